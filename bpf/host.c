/* SPDX-License-Identifier: Apache-2.0 */
/* Programs on the node's native device(s). One object per node: the masquerade address is
 * node-wide (SNAT_IPV4, in bpf/lib/nat.h).
 *
 *   cil_to_netdev     tc egress: masquerades pod → outside flows to SNAT_IPV4
 *   cil_from_netdev   tc ingress: first the pre hook (cilia_tc_slots, PRE: e.g. a tunnel's
 *                     receive program), then reverse-translates replies to masqueraded flows,
 *                     and hands packets for local endpoints to their to-container pipeline
 *                     (lxc.o's resume program), which delivers them straight to the pod; a
 *                     packet for anything else (the host, or routed on) is offered to the
 *                     service slot alone (NodePort, ExternalIP, LoadBalancer frontends)
 *   cil_from_netdev_main  the same without the pre hook (cilia_tc_slots, MAIN): where a
 *                     pre program hands back what it does not take
 *   *_resume          where slot programs hand packets back (cilia_tc_slots, RESUME)
 *
 * Anything the datapath does not handle (IPv6, ARP, other protocols, traffic of the host
 * itself) passes untouched: these programs share the device with the node. */
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
#include "lib/nat.h"
#include "lib/overlay.h"
#include "lib/redirect.h"
#include "lib/slots.h"
#include "lib/tuple.h"

/* ---- to-netdev ------------------------------------------------------------------------ */

/* Masquerade a flow when a pod opened it to an address outside the cluster (not when the
 * pod answers a connection that came in from outside to its own address). Outside is the
 * world, whether or not a policy names its CIDR (a local identity), but never an address behind
 * another node: an ipcache entry with a tunnel endpoint is one of that node's pods, or its pod
 * CIDR while the pod's own entry is still on its way. */
static __always_inline int wants_snat(const struct cilia_tuple *t, const struct cilia_ctx *ctx)
{
	struct cilia_endpoint_info *src;
	struct cilia_ipcache_value *dst;

	if (!SNAT_IPV4 || !t->tracked || t->saddr == bpf_htonl(SNAT_IPV4) || ctx->ct_status == CILIA_CT_REPLY)
		return 0;
	src = cilia_endpoint_lookup4(t->saddr);
	if (!src || (src->flags & CILIA_ENDPOINT_F_HOST))
		return 0;
	if (cilia_endpoint_lookup4(t->daddr))
		return 0;
	dst = cilia_ipcache_lookup4(t->daddr);
	if (!dst)
		return 1;
	if (dst->tunnel_endpoint)
		return 0;
	return dst->identity == CILIA_IDENTITY_WORLD || cilia_identity_is_local(dst->identity);
}

static __always_inline int to_netdev_forward(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	struct cilia_tuple t;
	__u8 reason;
	int r, created;

	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return TC_ACT_OK;
	if (ctx->drop_reason)
		return cilia_drop(skb, ctx, &t, ctx->drop_reason, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	if (!wants_snat(&t, ctx))
		return TC_ACT_OK;
	r = cilia_snat4(skb, &t, &created);
	if (r)
		return cilia_drop(skb, ctx, &t, r, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	ctx->flags |= CILIA_CTX_F_SNATED;
	cilia_ctx_store(skb, ctx);
	/* Counted as forwarded in from-container already; traced once per masqueraded flow. */
	if (created || cilia_trace_wanted(ctx, &t, CILIA_TRACE_TO_NETWORK))
		cilia_emit(skb, ctx, &t, CILIA_EVENT_TRACE, CILIA_TRACE_TO_NETWORK, CILIA_AP_TO_NETDEV);
	return TC_ACT_OK;
}

SEC("tc")
int cil_to_netdev(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_endpoint_info *src;
	struct cilia_tuple t;
	__u8 reason;

	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return TC_ACT_OK;
	src = cilia_endpoint_lookup4(t.saddr);
	if (!src) /* the host's own traffic */
		return TC_ACT_OK;
	ctx.endpoint_id = src->endpoint_id;
	ctx.src_identity = src->identity;
	ctx.dst_identity = cilia_identity4(t.daddr);
	/* Conntrack ran in from-container already: this is the same packet leaving the node. */
	ctx.ct_status = cilia_ct_status4(&t);
	cilia_run_slots(skb, &ctx, CILIA_AP_TO_NETDEV);
	return to_netdev_forward(skb, &ctx);
}

SEC("tc")
int cil_to_netdev_resume(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	if (!ctx.drop_reason)
		cilia_run_slots(skb, &ctx, CILIA_AP_TO_NETDEV);
	return to_netdev_forward(skb, &ctx);
}

/* ---- from-netdev ---------------------------------------------------------------------- */

static __always_inline int from_netdev_forward(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	struct cilia_endpoint_info *ep;
	struct cilia_tuple t;
	__u8 reason;

	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return TC_ACT_OK;
	if (ctx->drop_reason)
		return cilia_drop(skb, ctx, &t, ctx->drop_reason, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	ep = cilia_endpoint_lookup4(t.daddr);
	if (!ep || (ep->flags & CILIA_ENDPOINT_F_HOST))
		return TC_ACT_OK;
	/* The destination may be a service's backend the service slot chose. */
	ctx->endpoint_id = ep->endpoint_id;
	cilia_trace(skb, ctx, &t, (ctx->flags & CILIA_CTX_F_SNATED) ? CILIA_TRACE_FROM_NETWORK : CILIA_TRACE_TO_ENDPOINT,
		    CILIA_AP_FROM_NETDEV);
	return cilia_from_netdev_deliver(skb, ctx, &t, ep);
}

static __always_inline int from_netdev(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE, .src_identity = CILIA_IDENTITY_WORLD };
	struct cilia_endpoint_info *ep;
	struct cilia_tuple t;
	__u8 reason;
	int r;

	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return TC_ACT_OK;
	if (SNAT_IPV4 && t.daddr == bpf_htonl(SNAT_IPV4)) {
		r = t.tracked ? cilia_snat_rev4(skb, &t) : cilia_snat_rev_icmp_error4(skb, &t);
		if (r < 0)
			return cilia_drop(skb, &ctx, &t, -r, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
		if (r > 0)
			ctx.flags |= CILIA_CTX_F_SNATED;
	}
	ep = cilia_endpoint_lookup4(t.daddr);
	ctx.src_identity = cilia_identity4(t.saddr);
	if (!ep || (ep->flags & CILIA_ENDPOINT_F_HOST)) {
		/* For the host, or routed on: only the service slot sees it, which may translate a
		 * frontend (a NodePort on this node's address, an ExternalIP, a LoadBalancer IP). */
		ctx.flags |= CILIA_CTX_F_SERVICE_ONLY;
		ctx.attach_point = CILIA_AP_FROM_NETDEV;
		CILIA_TRY_SLOT(skb, &ctx, CILIA_AP_FROM_NETDEV, CILIA_SLOT_SERVICE);
		return TC_ACT_OK;
	}
	r = cilia_from_netdev_track(skb, &ctx, &t, ep);
	if (r)
		return cilia_drop(skb, &ctx, &t, r, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	cilia_run_slots(skb, &ctx, CILIA_AP_FROM_NETDEV);
	return from_netdev_forward(skb, &ctx);
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *skb)
{
	/* Before anything else: a pre program may take the packet (a tunnel packet it
	 * decapsulates) or give it back through cil_from_netdev_main. */
	cilia_run_pre(skb, CILIA_AP_FROM_NETDEV);
	return from_netdev(skb);
}

SEC("tc")
int cil_from_netdev_main(struct __sk_buff *skb)
{
	return from_netdev(skb);
}

SEC("tc")
int cil_from_netdev_resume(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	/* Offered to the service slot alone: the other slots see it once it is for an endpoint. */
	if ((ctx.flags & CILIA_CTX_F_SERVICE_ONLY) && !(ctx.flags & CILIA_CTX_F_LOCAL_DST))
		return from_netdev_forward(skb, &ctx);
	ctx.flags &= ~CILIA_CTX_F_SERVICE_ONLY;
	if (!ctx.drop_reason)
		cilia_run_slots(skb, &ctx, CILIA_AP_FROM_NETDEV);
	return from_netdev_forward(skb, &ctx);
}

char LICENSE[] SEC("license") = "GPL";
