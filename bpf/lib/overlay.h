/* SPDX-License-Identifier: Apache-2.0 */
/* Handing a packet that came in from the network to a local endpoint: what host.o's
 * cil_from_netdev and every overlay's receive program (a decapsulated packet) end with.
 *
 *   cilia_from_netdev_track    the context for the destination endpoint, conntrack
 *   cilia_from_netdev_deliver  the endpoint's to-container pipeline (its slots, then
 *                              bpf_redirect_peer), or direct delivery when that pipeline's
 *                              resume program is not installed
 *   cilia_overlay_deliver      both, with a trace in between: an overlay's receive tail
 *   cilia_overlay_from_stack   the context of a packet the host stack routed into an overlay
 *                              device (the node's own, or a local pod's the stack forwarded)
 *
 * Drops are counted at from-netdev, ingress: the packet arrived on a node device. */
#ifndef CILIA_LIB_OVERLAY_H
#define CILIA_LIB_OVERLAY_H

#include <cilia/common.h>
#include <cilia/ctx.h>
#include <cilia/drop.h>
#include <cilia/maps.h>
#include <cilia/slots.h>
#include <conntrack.h>
#include <endpoints.h>
#include <ipcache.h>
#include <monitor.h>
#include <redirect.h>
#include <slots.h>
#include <tuple.h>

/* Fills the context for local endpoint `ep` as the destination and tracks the packet with
 * ctx->src_identity (set by the caller). Returns 0 or a drop reason. */
static __always_inline int cilia_from_netdev_track(struct __sk_buff *skb, struct cilia_ctx *ctx,
						   struct cilia_tuple *t, const struct cilia_endpoint_info *ep)
{
	ctx->endpoint_id = ep->endpoint_id;
	ctx->dst_identity = ep->identity;
	ctx->flags |= CILIA_CTX_F_LOCAL_DST;
	return cilia_ct_process4(t, skb->len, ctx->src_identity, &ctx->ct_status);
}

/* Continues as `ep`'s to-container pipeline, which counts the packet and delivers it. Returns a
 * tc verdict only when that pipeline is not installed: then it delivers here. */
static __always_inline int cilia_from_netdev_deliver(struct __sk_buff *skb, struct cilia_ctx *ctx,
						     struct cilia_tuple *t, const struct cilia_endpoint_info *ep)
{
	__u8 reason;
	int verdict;

	ctx->target_ifindex = ep->host_ifindex;
	ctx->flags |= CILIA_CTX_F_REDIRECTED;
	cilia_enter_pipeline(skb, ctx, CILIA_AP_TO_CONTAINER);
	cilia_metrics_count(CILIA_REASON_FORWARDED, CILIA_DIR_INGRESS, skb->len);
	verdict = cilia_redirect_to_endpoint(skb, ep, &reason);
	if (!verdict)
		return cilia_drop(skb, ctx, t, reason, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	return verdict;
}

/* The receive tail of an overlay: a packet from another node (ctx->src_identity = the sender's
 * identity from the tunnel) for local endpoint `ep`. The to-container pipeline's policy slot
 * judges the remote identity. */
static __always_inline int cilia_overlay_deliver(struct __sk_buff *skb, struct cilia_ctx *ctx,
						 struct cilia_tuple *t, const struct cilia_endpoint_info *ep)
{
	int r = cilia_from_netdev_track(skb, ctx, t, ep);

	if (r)
		return cilia_drop(skb, ctx, t, r, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	cilia_trace(skb, ctx, t, CILIA_TRACE_TO_ENDPOINT, CILIA_AP_FROM_NETDEV);
	return cilia_from_netdev_deliver(skb, ctx, t, ep);
}

/* Source and destination identity of a packet the host stack routed into an overlay device:
 * the node's host identity, or the local pod's that sent it. Returns 0, or -1 for anything but
 * IPv4 (the overlay devices are NOARP: no ARP to answer, and no IPv6 crosses). */
static __always_inline int cilia_overlay_from_stack(struct __sk_buff *skb, struct cilia_ctx *ctx, struct cilia_tuple *t)
{
	struct cilia_endpoint_info *src;
	__u8 reason;

	if (cilia_tuple_parse4(skb, t, &reason) != CILIA_PARSE_IPV4)
		return -1;
	ctx->src_identity = CILIA_IDENTITY_HOST;
	src = cilia_endpoint_lookup4(t->saddr);
	if (src && !(src->flags & CILIA_ENDPOINT_F_HOST)) {
		ctx->src_identity = src->identity;
		ctx->endpoint_id = src->endpoint_id;
	}
	ctx->dst_identity = cilia_identity4(t->daddr);
	return 0;
}

#endif /* CILIA_LIB_OVERLAY_H */
