/* SPDX-License-Identifier: Apache-2.0 */
/* Programs on an endpoint's host-side veth. One object serves every endpoint: what differs
 * per endpoint is in cilia_endpoints, looked up by address.
 *
 *   cil_from_container  tc ingress: packets the pod sent
 *   cil_to_container    tc egress: packets the host stack sends to the pod
 *   *_resume            where slot programs hand packets back (cilia_tc_slots, RESUME)
 *
 * A packet from one local endpoint to another is tracked once, in from-container, then runs
 * the to-container slots of the destination (tail call into its resume program) and is
 * delivered to the destination pod with bpf_redirect_peer. Everything else goes to the
 * host stack, which delivers it to the host or routes it out (masqueraded by host.c), or
 * with HOST_ROUTING straight to the egress device the FIB names. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/maps.h"
#include "cilia/slots.h"
#include "lib/conntrack.h"
#include "lib/endpoints.h"
#include "lib/identity.h"
#include "lib/ipcache.h"
#include "lib/monitor.h"
#include "lib/proxy.h"
#include "lib/redirect.h"
#include "lib/slots.h"
#include "lib/tuple.h"

/* ---- from-container ------------------------------------------------------------------- */

/* Where the pod's packet goes once every slot let it through. */
static __always_inline int from_container_forward(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	struct cilia_endpoint_info *dst;
	struct cilia_tuple t;
	__u8 reason;
	int verdict;

	cilia_tuple_parse4(skb, &t, &reason);
	if (ctx->drop_reason)
		return cilia_drop(skb, ctx, &t, ctx->drop_reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	if (!(ctx->flags & CILIA_CTX_F_LOCAL_DST)) {
		if (HOST_ROUTING && !(ctx->flags & CILIA_CTX_F_HOST_DST)) {
			verdict = cilia_route_out4(skb, t.saddr, t.daddr, &reason);
			if (verdict == 0)
				return cilia_drop(skb, ctx, &t, reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
			if (verdict > 0) {
				cilia_forwarded(skb, ctx, &t, CILIA_TRACE_TO_NETWORK, CILIA_AP_FROM_CONTAINER,
						CILIA_DIR_EGRESS);
				return verdict;
			}
		}
		cilia_forwarded(skb, ctx, &t, CILIA_TRACE_TO_STACK, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
		return TC_ACT_OK;
	}
	dst = cilia_endpoint_lookup4(t.daddr);
	if (!dst) /* removed meanwhile */
		return TC_ACT_OK;
	cilia_forwarded(skb, ctx, &t, CILIA_TRACE_TO_ENDPOINT, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	/* Continue as the destination's to-container pipeline (its slots, then delivery). */
	ctx->endpoint_id = dst->endpoint_id;
	ctx->target_ifindex = dst->host_ifindex;
	ctx->flags |= CILIA_CTX_F_REDIRECTED;
	ctx->drop_reason = 0;
	cilia_enter_pipeline(skb, ctx, CILIA_AP_TO_CONTAINER);
	/* No to-container resume program installed: deliver directly. */
	verdict = cilia_redirect_to_endpoint(skb, dst, &reason);
	if (!verdict)
		return cilia_drop(skb, ctx, &t, reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	return verdict;
}

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_endpoint_info *src, *dst;
	struct cilia_tuple t;
	__u8 reason;
	int r;

	r = cilia_tuple_parse4(skb, &t, &reason);
	if (r == CILIA_PARSE_ARP)
		return TC_ACT_OK;
	if (r != CILIA_PARSE_IPV4)
		return cilia_drop(skb, &ctx, NULL, reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);

	src = cilia_endpoint_lookup4(t.saddr);
	if (!src || src->host_ifindex != skb->ifindex)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_INVALID_SOURCE, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	ctx.endpoint_id = src->endpoint_id;
	ctx.src_identity = src->identity;

	dst = cilia_endpoint_lookup4(t.daddr);
	if (dst && !(dst->flags & CILIA_ENDPOINT_F_HOST)) {
		ctx.dst_identity = dst->identity;
		ctx.flags |= CILIA_CTX_F_LOCAL_DST;
		ctx.target_ifindex = dst->host_ifindex;
	} else {
		ctx.dst_identity = dst ? dst->identity : cilia_identity4(t.daddr);
		if (ctx.dst_identity == CILIA_IDENTITY_HOST)
			ctx.flags |= CILIA_CTX_F_HOST_DST;
	}

	r = cilia_ct_process4(&t, skb->len, ctx.src_identity, &ctx.ct_status);
	if (r)
		return cilia_drop(skb, &ctx, &t, r, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);

	cilia_run_slots(skb, &ctx, CILIA_AP_FROM_CONTAINER);
	return from_container_forward(skb, &ctx);
}

SEC("tc")
int cil_from_container_resume(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	if (!ctx.drop_reason)
		cilia_run_slots(skb, &ctx, CILIA_AP_FROM_CONTAINER);
	return from_container_forward(skb, &ctx);
}

/* ---- to-container --------------------------------------------------------------------- */

static __always_inline int to_container_forward(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	struct cilia_endpoint_info *ep;
	struct cilia_tuple t;
	__u8 reason;
	int verdict;

	cilia_tuple_parse4(skb, &t, &reason);
	if (ctx->drop_reason)
		return cilia_drop(skb, ctx, &t, ctx->drop_reason, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);
	if (!(ctx->flags & CILIA_CTX_F_REDIRECTED)) {
		/* On the veth's egress: the packet is on its way to the pod already. */
		cilia_forwarded(skb, ctx, &t, CILIA_TRACE_TO_ENDPOINT, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);
		return TC_ACT_OK;
	}
	ep = cilia_endpoint_lookup4(t.daddr);
	if (!ep)
		return TC_ACT_OK;
	verdict = cilia_redirect_to_endpoint(skb, ep, &reason);
	if (!verdict)
		return cilia_drop(skb, ctx, &t, reason, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);
	cilia_metrics_count(CILIA_REASON_FORWARDED, CILIA_DIR_INGRESS, skb->len);
	return verdict;
}

SEC("tc")
int cil_to_container(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_endpoint_info *ep, *src;
	struct cilia_tuple t;
	__u8 reason;
	int r;

	r = cilia_tuple_parse4(skb, &t, &reason);
	if (r == CILIA_PARSE_ARP)
		return TC_ACT_OK;
	if (r != CILIA_PARSE_IPV4)
		return cilia_drop(skb, &ctx, NULL, reason, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);

	ep = cilia_endpoint_lookup4(t.daddr);
	if (!ep) /* not addressed to a known endpoint (e.g. broadcast): not ours to judge */
		return TC_ACT_OK;
	ctx.endpoint_id = ep->endpoint_id;
	ctx.dst_identity = ep->identity;
	ctx.flags |= CILIA_CTX_F_LOCAL_DST;
	src = cilia_endpoint_lookup4(t.saddr);
	ctx.src_identity = src ? src->identity : cilia_identity4(t.saddr);
	/* The L7 proxy's upstream connection carries its original source's identity. */
	if (cilia_mark_from_proxy(skb))
		ctx.src_identity = cilia_mark_proxy_identity(skb);

	r = cilia_ct_process4(&t, skb->len, ctx.src_identity, &ctx.ct_status);
	if (r)
		return cilia_drop(skb, &ctx, &t, r, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);

	cilia_run_slots(skb, &ctx, CILIA_AP_TO_CONTAINER);
	return to_container_forward(skb, &ctx);
}

SEC("tc")
int cil_to_container_resume(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	if (!ctx.drop_reason)
		cilia_run_slots(skb, &ctx, CILIA_AP_TO_CONTAINER);
	return to_container_forward(skb, &ctx);
}

char LICENSE[] SEC("license") = "GPL";
