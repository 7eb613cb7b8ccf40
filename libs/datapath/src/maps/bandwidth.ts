// cilia_bandwidth (bpf/include/cilia/maps.h): the bandwidth manager's per-endpoint limits.
import { codec } from '@cilia/bpf';

/** `struct cilia_bandwidth_key`. */
export const BandwidthKey = codec.struct('cilia_bandwidth_key', {
  endpointId: codec.u32,
  /** `enum cilia_direction` */
  direction: codec.u8,
  pad: codec.pad(3),
});

export type BandwidthKeyValue = ReturnType<typeof BandwidthKey.decode>;

/** `struct cilia_bandwidth_value`. */
export const BandwidthValue = codec.struct('cilia_bandwidth_value', {
  /** Bytes per second; 0 = unlimited. */
  rate: codec.u64n,
  /** Egress: the drop horizon; ingress: the burst tolerance (burst bytes at the rate), in ns. */
  horizonNs: codec.u64n,
  /** CLOCK_MONOTONIC departure time of the last packet let through. */
  tLast: codec.u64,
  /** Packets dropped for this limit. */
  drops: codec.u64n,
});

export type BandwidthEntry = ReturnType<typeof BandwidthValue.decode>;
