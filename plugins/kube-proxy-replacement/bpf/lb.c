/* SPDX-License-Identifier: Apache-2.0 */
/* @cilia/plugin-kube-proxy-replacement: the per-packet load balancer, in the service slot of
 * the tc pipelines (bpf/lib/lb.h does the work), for what no socket hook translated — pods when
 * the socket LB is limited to the host namespace, NodePort/ExternalIP/LoadBalancer traffic
 * arriving on a node device — and for the replies of what it translated.
 *
 *   cil_lb_from_container  from-container service slot: a pod's packet to a frontend gets its
 *                          connection's backend (DNAT) before policy and forwarding see it; a
 *                          reply a local backend sends to a translated connection gets the
 *                          frontend back as its source
 *   cil_lb_to_container    to-container service slot: replies delivered to a local client
 *                          (from a backend on this node or across an overlay) get the frontend
 *                          back as their source
 *   cil_lb_from_netdev     from-netdev service slot: NodePort, ExternalIP and LoadBalancer
 *                          traffic arriving on a node device (host.o offers it every packet
 *                          that is not for a local endpoint) gets its backend — a local one is
 *                          delivered, one on another node is reached from this node's address
 *                          (SNAT) through the FIB — and replies coming back are translated to
 *                          the frontend and routed to the client; also replies routed back to a
 *                          local client natively
 *
 * A frontend with no backend answers ICMP port unreachable (a TCP client sees ECONNREFUSED at
 * once) and counts a drop NO_SERVICE. Translations never flush or rewrite a map: the backend of
 * a connection is remembered in cilia_lb4_flows until its conntrack entry expires, so a backend
 * leaving the slots (terminating) keeps the connections it has. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/lb.h"
#include "cilia/maps.h"
#include "cilia/slots.h"
#include "lib/endpoints.h"
#include "lib/icmp.h"
#include "lib/identity.h"
#include "lib/ipcache.h"
#include "lib/lb.h"
#include "lib/monitor.h"
#include "lib/nat.h"
#include "lib/redirect.h"
#include "lib/slots.h"
#include "lib/tuple.h"

/* After DNAT the destination is the backend: what policy and forwarding must know of it. */
static __always_inline void retarget(struct cilia_ctx *ctx, __be32 daddr)
{
	struct cilia_endpoint_info *ep = cilia_endpoint_lookup4(daddr);

	ctx->flags &= ~(CILIA_CTX_F_LOCAL_DST | CILIA_CTX_F_HOST_DST);
	ctx->target_ifindex = 0;
	if (ep && !(ep->flags & CILIA_ENDPOINT_F_HOST)) {
		ctx->dst_identity = ep->identity;
		ctx->flags |= CILIA_CTX_F_LOCAL_DST;
		ctx->target_ifindex = ep->host_ifindex;
		return;
	}
	ctx->dst_identity = ep ? ep->identity : cilia_identity4(daddr);
	if (ctx->dst_identity == CILIA_IDENTITY_HOST)
		ctx->flags |= CILIA_CTX_F_HOST_DST;
}

/* A frontend without a backend: counted, then answered with ICMP port unreachable sent back
 * where the packet came from (the pod, through its veth's peer; or out of the device), unless
 * the frontend is Local-only, which does not answer at all. */
static __always_inline int no_backend(struct __sk_buff *skb, struct cilia_ctx *ctx, const struct cilia_tuple *t, __u32 ap,
				      __u8 dir, const struct cilia_lb4_service *svc)
{
	cilia_metrics_count(CILIA_DROP_NO_SERVICE, dir, skb->len);
	cilia_emit(skb, ctx, t, CILIA_EVENT_DROP, CILIA_DROP_NO_SERVICE, ap);
	if ((svc->flags & CILIA_LB_F_LOCAL_ONLY) ||
	    cilia_icmp4_reply_error(skb, CILIA_ICMP_DEST_UNREACH, CILIA_ICMP_PORT_UNREACH))
		return TC_ACT_SHOT;
	return ap == CILIA_AP_FROM_CONTAINER ? bpf_redirect_peer(skb->ifindex, 0) : bpf_redirect(skb->ifindex, 0);
}

/* Sends a translated packet out through the FIB (the stack would take one from a node address
 * arriving on a node device for a martian); the stack gets it when the FIB cannot say. */
static __always_inline int route_out(struct __sk_buff *skb, struct cilia_ctx *ctx, const struct cilia_tuple *t, __u32 ap, __u8 dir)
{
	__u8 reason = 0;
	int r = cilia_route_out4(skb, t->saddr, t->daddr, &reason);

	if (r == 0)
		return cilia_drop(skb, ctx, t, reason, ap, dir);
	if (r < 0) {
		cilia_slot_next(skb, ctx);
		return TC_ACT_OK;
	}
	cilia_forwarded(skb, ctx, t, CILIA_TRACE_TO_NETWORK, ap, dir);
	return r;
}

/* A connection from outside translated to a backend on another node: masqueraded to this node's
 * address (SNAT_IPV4, a port of cilia_snat) and routed there. Its replies come back to this node,
 * where host.o reverses the SNAT and the service slot the DNAT. */
static __always_inline int snat_out(struct __sk_buff *skb, struct cilia_ctx *ctx, struct cilia_tuple *t, __u32 ap, __u8 dir)
{
	int created, r;

	if (!SNAT_IPV4)
		return route_out(skb, ctx, t, ap, dir);
	r = cilia_snat4(skb, t, &created);
	if (r)
		return cilia_drop(skb, ctx, t, r, ap, dir);
	ctx->flags |= CILIA_CTX_F_SNATED;
	t->saddr = bpf_htonl(SNAT_IPV4);
	return route_out(skb, ctx, t, ap, dir);
}

/* Hands the packet back to the pipeline; TC_ACT_OK (the stack) if it has no resume program. */
static __always_inline int next(struct __sk_buff *skb, struct cilia_ctx *ctx)
{
	cilia_slot_next(skb, ctx);
	return TC_ACT_OK;
}

static __always_inline int lb_service(struct __sk_buff *skb, __u32 ap, __u8 dir)
{
	struct cilia_lb4_service *svc = NULL;
	struct cilia_ctx ctx;
	struct cilia_tuple t;
	__u8 reason, status;
	int r;

	cilia_ctx_load(skb, &ctx);
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return next(skb, &ctx);

	/* A reply of a connection translated on this node: from the frontend again. */
	r = cilia_lb4_rev_nat(skb, &t, 0, ctx.src_identity);
	if (r < 0)
		return cilia_drop(skb, &ctx, &t, -r, ap, dir);
	if (r > 0) {
		/* From a node address now (a NodePort reply to a client elsewhere): the stack would
		 * take it for a martian, so it leaves through the FIB from here; so does a reply that
		 * came back from another node's backend to a client outside. */
		if (!(ctx.flags & CILIA_CTX_F_LOCAL_DST) &&
		    (ap == CILIA_AP_FROM_NETDEV || cilia_identity4(t.saddr) == CILIA_IDENTITY_HOST))
			return route_out(skb, &ctx, &t, ap, dir);
		return next(skb, &ctx);
	}
	/* Connections are translated where they enter: to-container only sees what was. */
	if (ap == CILIA_AP_TO_CONTAINER)
		return next(skb, &ctx);

	r = cilia_lb4_xlate(skb, &t, ctx.src_identity, &svc, &status);
	if (r < 0)
		return cilia_drop(skb, &ctx, &t, -r, ap, dir);
	if (r == CILIA_LB_NO_BACKEND && svc)
		return no_backend(skb, &ctx, &t, ap, dir, svc);
	if (r == CILIA_LB_TRANSLATED) {
		retarget(&ctx, t.daddr);
		/* From outside to a backend on another node: it leaves from this node's address, so
		 * the reply comes back here to be translated. */
		if (ap == CILIA_AP_FROM_NETDEV && !(ctx.flags & CILIA_CTX_F_LOCAL_DST))
			return snat_out(skb, &ctx, &t, ap, dir);
	}
	return next(skb, &ctx);
}

SEC("tc")
int cil_lb_from_container(struct __sk_buff *skb)
{
	return lb_service(skb, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
}

SEC("tc")
int cil_lb_to_container(struct __sk_buff *skb)
{
	return lb_service(skb, CILIA_AP_TO_CONTAINER, CILIA_DIR_INGRESS);
}

SEC("tc")
int cil_lb_from_netdev(struct __sk_buff *skb)
{
	return lb_service(skb, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
