/** tc program return codes (linux/pkt_cls.h). */
export const TC_ACT = { UNSPEC: -1, OK: 0, RECLASSIFY: 1, SHOT: 2, PIPE: 3, STOLEN: 4, REDIRECT: 7 } as const;
/** XDP program return codes. */
export const XDP_ACT = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

/**
 * A `struct __sk_buff` context for test runs of tc programs. The kernel accepts only a few
 * fields in (mark, priority, ifindex, cb, tstamp, ...); offsets per linux/bpf.h.
 */
export function skbContext(fields: { mark?: number; priority?: number; ifindex?: number; cb?: number[] } = {}): Buffer {
  const ctx = Buffer.alloc(192); // sizeof(struct __sk_buff)
  ctx.writeUInt32LE(fields.mark ?? 0, 8);
  ctx.writeUInt32LE(fields.priority ?? 0, 32);
  ctx.writeUInt32LE(fields.ifindex ?? 0, 40);
  (fields.cb ?? []).forEach((v, i) => ctx.writeUInt32LE(v, 48 + i * 4));
  return ctx;
}
