/* SPDX-License-Identifier: Apache-2.0 */
/* Tail-call slots of the tc attach points (bpf/include/cilia/slots.h, maps.h, ctx.h).
 *
 * A base program parses the packet, fills a struct cilia_ctx and calls cilia_run_slots():
 * for each slot of its attach point in enum order it stores the context in skb->cb and
 * tail-calls cilia_tc_slots[CILIA_SLOT_INDEX(ap, slot)]. An empty slot makes the tail call
 * return, so the base goes on to the next one; after the last it runs its own default
 * forwarding. A slot program (in any object that includes this header: the prog array is
 * pinned by name) takes over the packet. It can
 *   - return a tc verdict itself (it owns the packet from then on), or
 *   - set ctx->drop_reason and/or other fields, and call cilia_slot_next(): that tail-calls
 *     the base's resume program (index CILIA_SLOT_RESUME of ctx->attach_point), which
 *     drops with the reason or carries on with the slot after ctx->slot. */
#ifndef CILIA_LIB_SLOTS_H
#define CILIA_LIB_SLOTS_H

#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/maps.h"
#include "cilia/slots.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, CILIA_TC_SLOTS_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_tc_slots SEC(".maps");

union cilia_ctx_words {
	struct cilia_ctx ctx;
	__u32 w[5];
};

_Static_assert(sizeof(struct cilia_ctx) == 20, "struct cilia_ctx must fit skb->cb");

/* Keep the context layout in BTF for the TS codec check (it only lives in skb->cb), and the
 * slot numbers for the check of their TS mirrors. */
CILIA_BTF_ANCHOR(cilia_ctx);
CILIA_BTF_ENUM_ANCHOR(cilia_ct_status);
CILIA_BTF_ENUM_ANCHOR(cilia_slot);
CILIA_BTF_ENUM_ANCHOR(cilia_slot_window);
CILIA_BTF_ENUM_ANCHOR(cilia_attach_point);

static __always_inline void cilia_ctx_store(struct __sk_buff *skb, const struct cilia_ctx *ctx)
{
	union cilia_ctx_words u = { .ctx = *ctx };

	skb->cb[0] = u.w[0];
	skb->cb[1] = u.w[1];
	skb->cb[2] = u.w[2];
	skb->cb[3] = u.w[3];
	skb->cb[4] = u.w[4];
}

static __always_inline void cilia_ctx_load(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	union cilia_ctx_words u;

	u.w[0] = skb->cb[0];
	u.w[1] = skb->cb[1];
	u.w[2] = skb->cb[2];
	u.w[3] = skb->cb[3];
	u.w[4] = skb->cb[4];
	*ctx = u.ctx;
}

#define CILIA_TRY_SLOT(skb, ctx, ap, s)                                              \
	do {                                                                         \
		if ((ctx)->slot == CILIA_SLOT_NONE || (ctx)->slot < (s)) {           \
			(ctx)->slot = (s);                                           \
			cilia_ctx_store(skb, ctx);                                   \
			bpf_tail_call(skb, &cilia_tc_slots, CILIA_SLOT_INDEX(ap, s)); \
		}                                                                    \
	} while (0)

/* Runs the slots of `ap` after ctx->slot; returns once every remaining slot was empty. */
static __always_inline void cilia_run_slots(struct __sk_buff *skb, struct cilia_ctx *ctx, __u32 ap)
{
	ctx->attach_point = ap;
	CILIA_TRY_SLOT(skb, ctx, ap, CILIA_SLOT_SERVICE);
	CILIA_TRY_SLOT(skb, ctx, ap, CILIA_SLOT_POLICY);
	CILIA_TRY_SLOT(skb, ctx, ap, CILIA_SLOT_L7_REDIRECT);
	CILIA_TRY_SLOT(skb, ctx, ap, CILIA_SLOT_SHAPING);
	CILIA_TRY_SLOT(skb, ctx, ap, CILIA_SLOT_FORWARD);
	ctx->slot = CILIA_SLOT_MAX;
}

/* For slot programs: hands the packet (and `ctx`, stored first) back to the base pipeline
 * that called the slot (ctx->attach_point). Returns only when no resume program is installed;
 * the caller then decides. */
static __always_inline void cilia_slot_next(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	cilia_ctx_store(skb, ctx);
	bpf_tail_call(skb, &cilia_tc_slots, CILIA_SLOT_INDEX((__u32)ctx->attach_point, CILIA_SLOT_RESUME));
}

/* For base programs: starts the pipeline of another attach point (e.g. to-container for a
 * local destination) from its first slot. Returns only when its resume program is missing. */
static __always_inline void cilia_enter_pipeline(struct __sk_buff *skb, struct cilia_ctx *ctx, __u32 ap)
{
	ctx->slot = CILIA_SLOT_NONE;
	ctx->attach_point = ap;
	cilia_ctx_store(skb, ctx);
	bpf_tail_call(skb, &cilia_tc_slots, CILIA_SLOT_INDEX(ap, CILIA_SLOT_RESUME));
}

/* ---- the pre hook (CILIA_SLOT_PRE / CILIA_SLOT_MAIN) ------------------------------------
 * An entry program that offers the hook calls cilia_run_pre() before it looks at the packet.
 * The pre program sees the packet as it arrived (no context: it starts its own) and either
 * owns it from then on (a tc verdict, or a tail call into another pipeline) or gives it back
 * with cilia_pre_continue(), which runs the base program (installed at MAIN) from the top. */

/* For base entry programs: tail-calls the pre program of `ap`; returns when there is none. */
static __always_inline void cilia_run_pre(struct __sk_buff *skb, __u32 ap)
{
	bpf_tail_call(skb, &cilia_tc_slots, CILIA_SLOT_INDEX(ap, CILIA_SLOT_PRE));
}

/* For pre programs: hands the packet, untouched, to the base program of `ap`. Without one
 * installed (an older loader) the packet goes to the stack as it came. */
static __always_inline int cilia_pre_continue(struct __sk_buff *skb, __u32 ap)
{
	bpf_tail_call(skb, &cilia_tc_slots, CILIA_SLOT_INDEX(ap, CILIA_SLOT_MAIN));
	return TC_ACT_OK;
}

#endif /* CILIA_LIB_SLOTS_H */
