// The per-packet context handed between slots (bpf/include/cilia/ctx.h), kept in skb->cb.
import { codec } from '@cilia/bpf';

/** `struct cilia_ctx`. */
export const PacketContext = codec.struct('cilia_ctx', {
  srcIdentity: codec.u32,
  dstIdentity: codec.u32,
  endpointId: codec.u16,
  /** Slot last tail-called; {@link SLOT_NONE} before the first. */
  slot: codec.u8,
  /** {@link CtStatus} */
  ctStatus: codec.u8,
  /** {@link CTX_FLAGS} */
  flags: codec.u16,
  /** {@link DropReason} a slot asks the base to drop with (0 = none). */
  dropReason: codec.u8,
  /** `enum cilia_attach_point` of the pipeline that ran the slot. */
  attachPoint: codec.u8,
  /** Host-side ifindex the forward default delivers to, 0 = the host stack. */
  targetIfindex: codec.u32,
});

export type PacketContextValue = ReturnType<typeof PacketContext.decode>;

/** `ctx.slot` before any slot ran. */
export const SLOT_NONE = 0xff;

/** `CILIA_CTX_F_*`. */
export const CTX_FLAGS = { redirected: 1, localDst: 2, hostDst: 4, snated: 8, serviceOnly: 16 } as const;

/** Offset of `cb[0]` in `struct __sk_buff`. */
const SKB_CB_OFFSET = 48;

/** The context a tc program left in skb->cb, from a test run's `ctx` output (`struct __sk_buff`). */
export function contextFromSkb(skb: Buffer): PacketContextValue {
  return PacketContext.decode(skb, SKB_CB_OFFSET);
}
