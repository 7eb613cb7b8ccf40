// cilia_ct: IPv4 connection tracking entries (bpf/include/cilia/maps.h, bpf/lib/conntrack.h).
import { codec, type BpfMap } from '@cilia/bpf';

/** `struct cilia_ct_key`: the tuple of the connection's original direction. */
export const CtKey = codec.struct('cilia_ct_key', {
  saddr: codec.ipv4,
  daddr: codec.ipv4,
  sport: codec.be16,
  dport: codec.be16,
  proto: codec.u8,
  flags: codec.u8,
  pad: codec.pad(2),
});

/** `struct cilia_ct_value`. */
export const CtValue = codec.struct('cilia_ct_value', {
  /** CLOCK_MONOTONIC deadline in ns (compare with `process.hrtime.bigint()`). */
  expiresNs: codec.u64,
  packetsOrig: codec.u64n,
  bytesOrig: codec.u64n,
  packetsReply: codec.u64n,
  bytesReply: codec.u64n,
  srcIdentity: codec.u32,
  revNatIndex: codec.u16,
  /** {@link CtState} */
  state: codec.u8,
  /** {@link CT_FLAGS} */
  flags: codec.u8,
});

export type CtKeyValue = ReturnType<typeof CtKey.decode>;
export type CtEntry = ReturnType<typeof CtValue.decode>;

/** `enum cilia_ct_state`. */
export const CtState = {
  none: 0,
  synSent: 1,
  synRecv: 2,
  established: 3,
  finWait: 4,
  closing: 5,
  closed: 6,
  unreplied: 7,
} as const;

/** `cilia_ct_value.flags`. */
export const CT_FLAGS = { finOrig: 1, finReply: 2, snat: 4 } as const;

/** `enum cilia_ct_status`: what conntrack made of one packet (in the per-packet context). */
export const CtStatus = { new: 0, established: 1, reply: 2, untracked: 3 } as const;

/**
 * Deletes the entries of a conntrack-like map (`cilia_ct`, `cilia_snat`) whose `expiresNs`
 * deadline has passed. Returns how many were deleted. The datapath already ignores expired
 * entries; this returns their room to the map before the LRU has to evict live ones.
 */
export function gcExpired<K>(map: BpfMap<K, { expiresNs: bigint }>, now: bigint = process.hrtime.bigint()): number {
  const expired: K[] = [];
  for (const [key, value] of map.entries()) if (value.expiresNs <= now) expired.push(key);
  for (const key of expired) map.delete(key);
  return expired.length;
}
