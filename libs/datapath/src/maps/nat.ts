// cilia_snat: masquerading entries (bpf/include/cilia/maps.h, bpf/lib/nat.h).
import { codec } from '@cilia/bpf';

/** `struct cilia_snat_key`: egress entries by the pod's tuple, ingress ones by the reply's. */
export const SnatKey = codec.struct('cilia_snat_key', {
  saddr: codec.ipv4,
  daddr: codec.ipv4,
  sport: codec.be16,
  dport: codec.be16,
  proto: codec.u8,
  /** {@link Direction}: egress = pod tuple → node address/port; ingress = reply tuple → pod. */
  dir: codec.u8,
  pad: codec.pad(2),
});

/** `struct cilia_snat_value`. */
export const SnatValue = codec.struct('cilia_snat_value', {
  /** CLOCK_MONOTONIC deadline in ns, refreshed by traffic. */
  expiresNs: codec.u64,
  addr: codec.ipv4,
  port: codec.be16,
  pad: codec.pad(2),
});

export type SnatKeyValue = ReturnType<typeof SnatKey.decode>;
export type SnatEntry = ReturnType<typeof SnatValue.decode>;
