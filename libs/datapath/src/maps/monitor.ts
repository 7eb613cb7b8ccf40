// Drop reasons, trace points, the metrics map and the event record
// (bpf/include/cilia/drop.h, maps.h, events.h).
import { codec } from '@cilia/bpf';
import { EventHeader } from './events.js';

/** `enum cilia_drop_reason` (0 counts forwarded packets in the metrics). */
export const DropReason = {
  forwarded: 0,
  invalidPacket: 1,
  unsupportedL3: 2,
  invalidSource: 3,
  fragment: 4,
  ctCreateFailed: 5,
  natNoPort: 6,
  rewriteFailed: 7,
  policyDenied: 8,
  redirectFailed: 9,
  ttlExceeded: 10,
  policyDeny: 11,
  policyNotRealized: 12,
  noTunnelEndpoint: 13,
  encapFailed: 14,
  decapFailed: 15,
  noService: 16,
  edtHorizon: 17,
  bandwidthLimit: 18,
} as const;

/** A drop reason in words, for `cilia monitor` and metrics labels. */
export const DROP_REASON_TEXT: Readonly<Record<number, string>> = {
  0: 'forwarded',
  1: 'invalid packet',
  2: 'unsupported L3 protocol',
  3: 'invalid source address',
  4: 'IPv4 fragment without its first',
  5: 'conntrack entry could not be created',
  6: 'no free masquerade port',
  7: 'packet rewrite failed',
  8: 'policy denied',
  9: 'redirect failed',
  10: 'TTL exceeded',
  11: 'policy denied by a deny rule',
  12: 'policy not realized (fail closed)',
  13: 'no tunnel endpoint for the destination',
  14: 'encapsulation failed',
  15: 'decapsulation failed',
  16: 'no service backend',
  17: 'EDT departure time beyond the horizon',
  18: 'ingress bandwidth limit exceeded',
};

/** `enum cilia_trace_point`. */
export const TracePoint = { toEndpoint: 0, toStack: 1, toNetwork: 2, fromNetwork: 3, toProxy: 4 } as const;

/** `enum cilia_direction`. */
export const Direction = { ingress: 0, egress: 1 } as const;

/** `struct cilia_metrics_key`. */
export const MetricsKey = codec.struct('cilia_metrics_key', {
  reason: codec.u8,
  dir: codec.u8,
  pad: codec.pad(2),
});

/** `struct cilia_metrics_value` (one CPU's share). */
export const MetricsValue = codec.struct('cilia_metrics_value', { packets: codec.u64n, bytes: codec.u64n });

/** `struct cilia_packet_event`: a drop or trace record in `cilia_events`. */
export const PacketEvent = codec.struct('cilia_packet_event', {
  hdr: EventHeader,
  saddr: codec.ipv4,
  daddr: codec.ipv4,
  sport: codec.be16,
  dport: codec.be16,
  proto: codec.u8,
  ctStatus: codec.u8,
  endpointId: codec.u16,
  srcIdentity: codec.u32,
  dstIdentity: codec.u32,
  len: codec.u32,
  targetIfindex: codec.u32,
});

export type PacketEventRecord = ReturnType<typeof PacketEvent.decode>;
