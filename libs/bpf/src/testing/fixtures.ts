// Codecs of the structs in bpf/tests/*.c, shared by this package's tests and checked
// against BTF by layout.test.ts. Not exported from the package.
import { be16, bytes, ipv4, pad, struct, u16, u32, u64, u64n, u8 } from '../codec.js';

/** struct test_key (maps.c) */
export const TestKey = struct('test_key', { addr: ipv4, port: u16, proto: u8, dir: u8 });
/** struct test_value (maps.c) */
export const TestValue = struct('test_value', {
  packets: u64n,
  bytes: u64n,
  flags: u32,
  proxyPort: u16,
  action: u8,
  pad: pad(1),
});
/** struct lpm_v4_key (maps.c) */
export const LpmV4Key = struct('lpm_v4_key', { prefixlen: u32, addr: bytes(4) });
/** enum test_action (maps.c) */
export const TestAction = { PASS: 0, DROP: 1, REDIRECT: 7 } as const;
/**
 * struct cilia_event_hdr, the header ringbuf.c's records start with (bpf/lib/events.h). The
 * datapath's own codec is @cilia/datapath's; this one is a test fixture of the producer.
 */
export const TestEventHeader = struct('cilia_event_hdr', { type: u8, subtype: u8, source: u16, ifindex: u32, tsNs: u64 });
/** What ringbuf.c writes into every header: type CILIA_EVENT_DEBUG, source CILIA_AP_FROM_NETDEV. */
export const TEST_EVENT_HDR = { type: 5, source: 4 } as const;
/** struct test_event (ringbuf.c) */
export const TestEvent = struct('test_event', { hdr: TestEventHeader, seq: u64n, cpu: u32, mark: u32 });
/** struct deny_key (packet.c) */
export const DenyKey = struct('deny_key', { saddr: ipv4, dport: be16, proto: u8, pad: pad(1) });
