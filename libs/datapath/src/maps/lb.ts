// The load balancer's maps (bpf/include/cilia/lb.h, bpf/lib/lb.h), written by @cilia/lb.
import { codec } from '@cilia/bpf';

/** `struct cilia_lb4_key`: a frontend (slot 0) or one of its backend slots (1..count). */
export const Lb4Key = codec.struct('cilia_lb4_key', {
  address: codec.ipv4,
  dport: codec.be16,
  backendSlot: codec.u16,
  /** IP protocol number (6 TCP, 17 UDP). */
  proto: codec.u8,
  pad: codec.pad(3),
});

/** `struct cilia_lb4_service`. */
export const Lb4Service = codec.struct('cilia_lb4_service', {
  /** Slot ≥ 1: the backend in that slot. */
  backendId: codec.u32,
  /** Slot 0: seconds of ClientIP affinity, 0 = none. */
  affinityTimeout: codec.u32,
  /** Slot 0: backends new connections choose from. */
  count: codec.u16,
  revNatIndex: codec.u16,
  /** Slot 0: {@link LbFrontendType}. */
  type: codec.u8,
  /** Slot 0: {@link LbAlgorithmCode}. */
  algorithm: codec.u8,
  /** Slot 0: {@link LB_FLAGS}. */
  flags: codec.u16,
});

/** `struct cilia_lb4_backend`. */
export const Lb4Backend = codec.struct('cilia_lb4_backend', {
  address: codec.ipv4,
  port: codec.be16,
  proto: codec.u8,
  /** {@link LbBackendState}. */
  state: codec.u8,
});

/** `struct cilia_lb4_reverse_nat` (key: the frontend id, u16). */
export const Lb4ReverseNat = codec.struct('cilia_lb4_reverse_nat', {
  address: codec.ipv4,
  port: codec.be16,
  pad: codec.pad(2),
});

/** `struct cilia_lb4_flow` (key: `struct cilia_ct_key`, {@link CtKey}). */
export const Lb4Flow = codec.struct('cilia_lb4_flow', {
  /** CLOCK_MONOTONIC deadline in ns. */
  expiresNs: codec.u64,
  backendId: codec.u32,
  revNatIndex: codec.u16,
  pad: codec.pad(2),
});

/** `struct cilia_lb_affinity_key`. */
export const LbAffinityKey = codec.struct('cilia_lb_affinity_key', {
  /** An IPv4 address in network order in the low 4 bytes (read as little-endian u64), or a netns cookie. */
  client: codec.u64,
  revNatIndex: codec.u16,
  netns: codec.u8,
  pad: codec.pad(5),
});

/** `struct cilia_lb_affinity_value`. */
export const LbAffinityValue = codec.struct('cilia_lb_affinity_value', {
  lastUsedNs: codec.u64,
  backendId: codec.u32,
  pad: codec.pad(4),
});

/** `struct cilia_lb_affinity_match` (value: u32 1). */
export const LbAffinityMatch = codec.struct('cilia_lb_affinity_match', {
  backendId: codec.u32,
  revNatIndex: codec.u16,
  pad: codec.pad(2),
});

/** `struct cilia_lb4_sk_key`. */
export const Lb4SkKey = codec.struct('cilia_lb4_sk_key', {
  cookie: codec.u64,
  address: codec.ipv4,
  port: codec.be16,
  pad: codec.pad(2),
});

/** `struct cilia_lb4_sk_value`. */
export const Lb4SkValue = codec.struct('cilia_lb4_sk_value', {
  address: codec.ipv4,
  port: codec.be16,
  revNatIndex: codec.u16,
});

export type Lb4KeyValue = ReturnType<typeof Lb4Key.decode>;
export type Lb4ServiceValue = ReturnType<typeof Lb4Service.decode>;
export type Lb4BackendValue = ReturnType<typeof Lb4Backend.decode>;

/** `enum cilia_lb_frontend_type`. */
export const LbFrontendType = { ClusterIP: 0, NodePort: 1, ExternalIP: 2, LoadBalancer: 3 } as const;

/** `enum cilia_lb_algorithm`. */
export const LbAlgorithmCode = { random: 0, maglev: 1 } as const;

/** `enum cilia_lb_backend_state`. */
export const LbBackendState = { active: 0, terminating: 1, quarantined: 2, maintenance: 3 } as const;

/** `cilia_lb4_service.flags`. */
export const LB_FLAGS = { localOnly: 1 } as const;

/** Compiled sizes (`CILIA_LB*_MAX`). */
export const LB_MAP_MAX = {
  services: 262144,
  backends: 262144,
  reverseNat: 65536,
  flows: 65536,
  affinity: 65536,
  affinityMatch: 262144,
  maglev: 65536,
  skReverse: 65536,
} as const;
