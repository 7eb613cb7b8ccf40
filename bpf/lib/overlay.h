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
 *   cilia_overlay_remote_endpoint  the tunnel endpoint the ipcache names for a destination
 *   cilia_overlay_stack_endpoint   where such a stack-routed packet goes: that, else the
 *                              gateway of the node's route into the device
 *
 * Drops are counted at from-netdev, ingress: the packet arrived on a node device. */
#ifndef CILIA_LIB_OVERLAY_H
#define CILIA_LIB_OVERLAY_H

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
#include "lib/redirect.h"
#include "lib/slots.h"
#include "lib/tuple.h"

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

/* The gateway of the route the host stack took to `daddr` when that route goes into `device`
 * (`<pod CIDR> via <node> dev <device> onlink`: the node's routes name the tunnel endpoint), else
 * 0. For the node's own packets, which reach a tunnel device's egress without a tunnel key. */
static __always_inline __be32 cilia_overlay_route_gateway(struct __sk_buff *skb, __be32 saddr, __be32 daddr, __u32 device)
{
	struct bpf_fib_lookup fib = {
		.family = 2, /* AF_INET */
		.ifindex = skb->ifindex,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
	};
	long r = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH);

	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	if (fib.ifindex != device || fib.ipv4_dst == daddr)
		return 0;
	return fib.ipv4_dst;
}

/* The tunnel endpoint the ipcache names for `daddr`; 0 when it names none, or this node's own
 * (`local`, network order; 0 when not known). */
static __always_inline __be32 cilia_overlay_remote_endpoint(__be32 daddr, __be32 local)
{
	struct cilia_ipcache_value *v = cilia_ipcache_lookup4(daddr);

	if (!v || !v->tunnel_endpoint || v->tunnel_endpoint == local)
		return 0;
	return v->tunnel_endpoint;
}

/* The tunnel endpoint of a destination the stack routed into overlay device `device`: the
 * ipcache's, else the gateway of the route (`<pod CIDR> via <node> dev <device> onlink`), 0 if
 * neither. */
static __always_inline __be32 cilia_overlay_stack_endpoint(struct __sk_buff *skb, __be32 saddr, __be32 daddr, __be32 local,
							   __u32 device)
{
	__be32 endpoint = cilia_overlay_remote_endpoint(daddr, local);

	return endpoint ? endpoint : cilia_overlay_route_gateway(skb, saddr, daddr, device);
}

#endif /* CILIA_LIB_OVERLAY_H */
