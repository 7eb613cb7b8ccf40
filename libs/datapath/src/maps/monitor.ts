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

/**
 * Each drop reason as Cilium numbers, names and words it (pkg/monitor/api/drop.go, Hubble's
 * `DropReason` enum): what metrics labels, `cilia monitor` and flows show, so Cilium's
 * dashboards and Hubble's clients read Cilia's drops as their own.
 */
export const CILIUM_DROP_REASON: Readonly<Record<number, { readonly code: number; readonly name: string; readonly text: string }>> = {
  1: { code: 134, name: 'INVALID_PACKET_DROPPED', text: 'Invalid packet' },
  2: { code: 139, name: 'UNSUPPORTED_L3_PROTOCOL', text: 'Unsupported L3 protocol' },
  3: { code: 132, name: 'INVALID_SOURCE_IP', text: 'Invalid source ip' },
  4: { code: 175, name: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', text: 'First logical datagram fragment not found' },
  5: { code: 155, name: 'CT_MAP_INSERTION_FAILED', text: 'CT: Map insertion failed' },
  6: { code: 167, name: 'NO_MAPPING_FOR_NAT_MASQUERADE', text: 'No mapping for NAT masquerade' },
  7: { code: 141, name: 'ERROR_WRITING_TO_PACKET', text: 'Error writing to packet' },
  8: { code: 133, name: 'POLICY_DENIED', text: 'Policy denied' },
  9: { code: 152, name: 'NO_MATCHING_LOCAL_CONTAINER_FOUND', text: 'No matching local container found' },
  10: { code: 196, name: 'TTL_EXCEEDED', text: 'TTL exceeded' },
  11: { code: 181, name: 'POLICY_DENY', text: 'Policy denied by denylist' },
  12: { code: 165, name: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION', text: 'No configuration available to perform policy decision' },
  13: { code: 160, name: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT', text: 'No tunnel/encapsulation endpoint (datapath BUG!)' },
  14: { code: 141, name: 'ERROR_WRITING_TO_PACKET', text: 'Error writing to packet' },
  15: { code: 147, name: 'ERROR_RETRIEVING_TUNNEL_KEY', text: 'Error retrieving tunnel key' },
  16: { code: 158, name: 'SERVICE_BACKEND_NOT_FOUND', text: 'Service backend not found' },
  17: { code: 162, name: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON', text: 'Reached EDT rate-limiting drop horizon' },
  18: { code: 198, name: 'DROP_RATE_LIMITED', text: 'Rate limited' },
};

/** A drop reason in Cilium's words (`Policy denied`), for metrics labels and `cilia monitor`. */
export const DROP_REASON_TEXT: Readonly<Record<number, string>> = {
  0: 'Success',
  ...Object.fromEntries(Object.entries(CILIUM_DROP_REASON).map(([reason, r]) => [reason, r.text])),
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
  tcpFlags: codec.u8,
  icmpType: codec.u8,
  pad: codec.pad(2),
});

export type PacketEventRecord = ReturnType<typeof PacketEvent.decode>;
