// cilia_policy and cilia_policy_endpoints (bpf/include/cilia/maps.h), and the policy verdict
// record (bpf/include/cilia/events.h). The writer is libs/datapath/src/policy/map.ts.
import { codec } from '@cilia/bpf';
import { EventHeader } from './events.js';

/** Bits of endpoint, direction, pad and identity that every key matches exactly. */
export const POLICY_PREFIX_STATIC = 64;
/** Prefix length of an entry naming a protocol but no port. */
export const POLICY_PREFIX_PROTO = 72;
/** Prefix length before the port's prefix bits (protocol and the zero pad2 byte). */
export const POLICY_PREFIX_PORT = 80;
/** Prefix length of a whole key (one port); the datapath looks up with it. */
export const POLICY_PREFIX_FULL = 96;

/** `struct cilia_policy_key`. */
export const PolicyMapKey = codec.struct('cilia_policy_key', {
  prefixlen: codec.u32,
  endpointId: codec.be16,
  /** `enum cilia_direction` */
  direction: codec.u8,
  pad: codec.pad(1),
  /** Peer identity, 0 = any. */
  identity: codec.be32,
  /** IP protocol, 0 = any. */
  protocol: codec.u8,
  pad2: codec.pad(1),
  /** Destination port (ICMP: type); only its first `prefixlen - 80` bits count. */
  dport: codec.be16,
});

export type PolicyMapKeyValue = ReturnType<typeof PolicyMapKey.decode>;

/** `cilia_policy_value.flags`. */
export const POLICY_FLAGS = { deny: 1, wildcardPort: 2 } as const;

/** `struct cilia_policy_value`. */
export const PolicyMapValue = codec.struct('cilia_policy_value', {
  /** {@link POLICY_FLAGS} */
  flags: codec.u8,
  pad: codec.pad(1),
  proxyPort: codec.be16,
  pad2: codec.pad(4),
});

export type PolicyMapValueValue = ReturnType<typeof PolicyMapValue.decode>;

/** `enum cilia_policy_mode`: what a direction of an endpoint does. */
export const PolicyModeCode = { allowAll: 0, enforce: 1, denyAll: 2 } as const;

/** `struct cilia_policy_endpoint` (value of `cilia_policy_endpoints`, keyed by u32 endpoint id). */
export const PolicyEndpointValue = codec.struct('cilia_policy_endpoint', {
  /** {@link PolicyModeCode} */
  ingress: codec.u8,
  /** {@link PolicyModeCode} */
  egress: codec.u8,
  flags: codec.u16,
  revision: codec.u32,
});

export type PolicyEndpointRecord = ReturnType<typeof PolicyEndpointValue.decode>;

/** `enum cilia_policy_match`: how a verdict was reached. */
export const PolicyMatch = { none: 0, l3Only: 1, l3L4: 2, l4Only: 3, all: 4 } as const;

/** `enum cilia_policy_verdict`: hdr.subtype of a policy verdict record. */
export const PolicyVerdict = { allowed: 0, denied: 1 } as const;

/** `struct cilia_policy_verdict_event`: a policy verdict record in `cilia_events`. */
export const PolicyVerdictEvent = codec.struct('cilia_policy_verdict_event', {
  hdr: EventHeader,
  saddr: codec.ipv4,
  daddr: codec.ipv4,
  sport: codec.be16,
  /** The port policy matched on (ICMP: the type). */
  dport: codec.be16,
  proto: codec.u8,
  /** `enum cilia_direction` */
  direction: codec.u8,
  /** {@link PolicyMatch} */
  matchType: codec.u8,
  /** `enum cilia_drop_reason`, 0 when allowed. */
  dropReason: codec.u8,
  endpointId: codec.u16,
  proxyPort: codec.be16,
  remoteIdentity: codec.u32,
});

export type PolicyVerdictRecord = ReturnType<typeof PolicyVerdictEvent.decode>;
