// Codecs of the structs in bpf/tests/*.c, shared by this package's tests and checked
// against BTF by layout.test.ts. Not exported from the package.
import { EventHeader } from '../abi.js';
import { be16, bytes, ipv4, pad, struct, u16, u32, u64n, u8 } from '../codec.js';

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
/** struct test_event (ringbuf.c) */
export const TestEvent = struct('test_event', { hdr: EventHeader, seq: u64n, cpu: u32, mark: u32 });
/** struct deny_key (packet.c) */
export const DenyKey = struct('deny_key', { saddr: ipv4, dport: be16, proto: u8, pad: pad(1) });
