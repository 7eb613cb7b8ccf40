/* SPDX-License-Identifier: Apache-2.0 */
/* @cilia/plugin-overlay-geneve: pods across nodes over Geneve, encapsulated and decapsulated
 * here because the kernel has no Geneve device.
 *
 *   cil_geneve_to_overlay    from-container forward slot: a destination whose ipcache entry
 *                            names a tunnel endpoint (another node) leaves encapsulated —
 *                            outer Ethernet/IPv4/UDP/Geneve, the source identity in the VNI —
 *                            redirected straight to the underlay device the FIB names
 *   cil_geneve_from_host     tc egress of the host device (a veth the node routes other nodes'
 *                            pod CIDRs into): the node's own packets leave encapsulated the
 *                            same way, VNI = its host identity
 *   cil_geneve_from_overlay  the from-netdev pre hook (cilia_tc_slots, PRE), which host.o's
 *                            cil_from_netdev runs before anything else: Geneve to this node's
 *                            tunnel address is stripped and enters the destination endpoint's
 *                            to-container pipeline with the VNI as source identity, so its
 *                            policy judges the sender; any other packet goes back to the base
 *                            (cilia_pre_continue) */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/maps.h"
#include "cilia/slots.h"
#include "lib/endpoints.h"
#include "lib/identity.h"
#include "lib/ipcache.h"
#include "lib/monitor.h"
#include "lib/overlay.h"
#include "lib/parse.h"
#include "lib/redirect.h"
#include "lib/slots.h"
#include "lib/tuple.h"
#include "geneve.h"

/* UDP port of the tunnel, both directions (IANA: 6081). */
CILIA_CONST(__u16, GENEVE_PORT, 6081);
/* This node's tunnel address, host byte order: the outer source of what it sends, and the
 * address tunnel packets must be sent to. 0: the FIB picks the source, and any address of the
 * node (ipcache identity host) receives. */
CILIA_CONST(__u32, TUNNEL_IPV4, 0);

/* ---- to the overlay ------------------------------------------------------------------- */

/* Encapsulates towards `remote` and redirects to the underlay (bpf/lib/udp_tunnel.h). Returns
 * a tc verdict, or 0 with *reason set. */
static __always_inline int geneve_encap_redirect(struct __sk_buff *skb, __u32 vni, __be32 remote, __u32 *out_ifindex,
						 __u8 *reason)
{
	struct cilia_genevehdr g;

	*reason = CILIA_DROP_ENCAP_FAILED;
	if (vni > CILIA_GENEVE_VNI_MAX)
		return 0;
	cilia_geneve_hdr(&g, vni);
	return cilia_udp_tunnel_redirect(skb, (const __u8 *)&g, bpf_htonl(TUNNEL_IPV4), remote, GENEVE_PORT, NULL,
					 out_ifindex, reason);
}

SEC("tc")
int cil_geneve_to_overlay(struct __sk_buff *skb)
{
	struct cilia_ipcache_value *dst;
	struct cilia_ctx ctx;
	struct cilia_tuple t;
	__be32 remote;
	__u32 ifindex = 0;
	__u8 reason;
	int verdict;

	cilia_ctx_load(skb, &ctx);
	if (ctx.drop_reason || (ctx.flags & (CILIA_CTX_F_LOCAL_DST | CILIA_CTX_F_HOST_DST)))
		goto next;
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		goto next;
	dst = cilia_ipcache_lookup4(t.daddr);
	if (!dst)
		goto next;
	remote = dst->tunnel_endpoint;
	if (!remote) {
		if (cilia_identity_is_pod(dst->identity))
			return cilia_drop(skb, &ctx, &t, CILIA_DROP_NO_TUNNEL_ENDPOINT, CILIA_AP_FROM_CONTAINER,
					  CILIA_DIR_EGRESS);
		goto next;
	}
	/* An entry of this very node (a pod not attached here yet): not for the tunnel. */
	if (TUNNEL_IPV4 && remote == bpf_htonl(TUNNEL_IPV4))
		goto next;
	verdict = geneve_encap_redirect(skb, ctx.src_identity, remote, &ifindex, &reason);
	if (!verdict)
		return cilia_drop(skb, &ctx, &t, reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	ctx.target_ifindex = ifindex;
	cilia_forwarded(skb, &ctx, &t, CILIA_TRACE_TO_NETWORK, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	return verdict;
next:
	cilia_slot_next(skb, &ctx);
	/* No resume program installed: what the base default does for a non-local destination. */
	return TC_ACT_OK;
}

/* ---- the node's own traffic: tc egress of the host device ------------------------------ */

/* The device the node routes other nodes' pod CIDRs into (set at load). */
CILIA_CONST(__u32, HOST_DEVICE_IFINDEX, 0);

/* What the node itself sends to pods of other nodes: the host stack routes it into the host
 * device, and it leaves here encapsulated like a pod's packet, with the node's host identity
 * (or the source endpoint's, for a local pod's packet the stack routed) as VNI, so it crosses
 * any underlay, not only a shared L2. */
SEC("tc")
int cil_geneve_from_host(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_tuple t;
	__be32 remote;
	__u32 ifindex = 0;
	__u8 reason;
	int verdict;

	if (cilia_overlay_from_stack(skb, &ctx, &t) < 0)
		return TC_ACT_SHOT;
	remote = cilia_overlay_stack_endpoint(skb, t.saddr, t.daddr, bpf_htonl(TUNNEL_IPV4), HOST_DEVICE_IFINDEX);
	if (!remote)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_NO_TUNNEL_ENDPOINT, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	verdict = geneve_encap_redirect(skb, ctx.src_identity, remote, &ifindex, &reason);
	if (!verdict)
		return cilia_drop(skb, &ctx, &t, reason, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	return verdict;
}

/* ---- from the overlay ----------------------------------------------------------------- */

static __always_inline int is_tunnel_address(__be32 daddr)
{
	if (TUNNEL_IPV4)
		return daddr == bpf_htonl(TUNNEL_IPV4);
	return cilia_identity4(daddr) == CILIA_IDENTITY_HOST;
}

/* Where the outer headers end (the inner IPv4 header starts), or 0 when the packet is not
 * Geneve for this node, or -1 when it is but cannot be decapsulated. *vni is the VNI. */
static __always_inline int geneve_inner_offset(struct __sk_buff *skb, __u32 *vni)
{
	struct cilia_cursor cur = cilia_cursor_skb(skb);
	struct ethhdr *eth = cilia_take(&cur, sizeof(*eth));
	struct cilia_genevehdr *g;
	struct ethhdr *inner;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 optlen;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = cilia_take_ipv4(&cur);
	if (!ip || ip->version != 4 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(CILIA_IPV4_FRAG_MASK)))
		return 0;
	udp = cilia_take(&cur, sizeof(*udp));
	if (!udp || udp->dest != bpf_htons(GENEVE_PORT) || !is_tunnel_address(ip->daddr))
		return 0;
	/* From here on it is tunnel traffic for this node: what cannot be used is dropped. */
	g = cilia_take(&cur, sizeof(*g));
	if (!g || (g->ver_optlen & CILIA_GENEVE_VERSION_MASK) || (g->flags & CILIA_GENEVE_F_OAM) ||
	    g->protocol != bpf_htons(CILIA_ETH_P_TEB))
		return -1;
	optlen = (g->ver_optlen & CILIA_GENEVE_OPTLEN_MASK) * 4;
	/* Options we would have to understand: RFC 8926 says drop. */
	if (optlen && (g->flags & CILIA_GENEVE_F_CRITICAL))
		return -1;
	*vni = cilia_geneve_vni(g);
	if (optlen && !cilia_take(&cur, optlen))
		return -1;
	inner = cilia_take(&cur, sizeof(*inner));
	if (!inner || inner->h_proto != bpf_htons(ETH_P_IP) || !cilia_take(&cur, sizeof(struct iphdr)))
		return -1;
	return (int)((long)cur.pos - (long)skb->data) - (int)sizeof(struct iphdr);
}

SEC("tc")
int cil_geneve_from_overlay(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_endpoint_info *ep;
	struct cilia_tuple t;
	__u32 vni = 0;
	__u8 reason;
	int inner;

	inner = geneve_inner_offset(skb, &vni);
	if (inner == 0)
		return cilia_pre_continue(skb, CILIA_AP_FROM_NETDEV);
	if (inner < 0)
		goto decap_failed;
	/* Keep the outer Ethernet header (delivery rewrites its MACs), drop the rest of the outer
	 * headers and the inner Ethernet header. The pod MTU left room for them: keep gso_size. */
	if (bpf_skb_adjust_room(skb, -(inner - ETH_HLEN), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		goto decap_failed;
	ctx.src_identity = cilia_identity_from_tunnel(vni);
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		goto decap_failed;
	ep = cilia_endpoint_lookup4(t.daddr);
	/* Only pods of this node are reached through the tunnel. */
	if (!ep || (ep->flags & CILIA_ENDPOINT_F_HOST))
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_DECAP_FAILED, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	return cilia_overlay_deliver(skb, &ctx, &t, ep);

decap_failed:
	return cilia_drop(skb, &ctx, NULL, CILIA_DROP_DECAP_FAILED, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
