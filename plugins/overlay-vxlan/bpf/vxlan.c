/* SPDX-License-Identifier: Apache-2.0 */
/* @cilia/plugin-overlay-vxlan: pods across nodes over VXLAN (RFC 7348), with an external
 * (collect_md) VXLAN device beside the eBPF.
 *
 *   cil_vxlan_forward   from-container forward slot: a destination whose ipcache entry names a
 *                       tunnel endpoint leaves encapsulated here — outer IPv4/UDP/VXLAN, the
 *                       source's security identity as VNI, the inner frame addressed device MAC
 *                       to device MAC — straight out of the underlay device the FIB names
 *                       (bpf/lib/udp_tunnel.h), without the device's transmit path
 *   cil_from_overlay    tc ingress of the VXLAN device: the VNI is the source identity; a packet
 *                       for a local endpoint enters its to-container pipeline (so the policy
 *                       slot judges the remote source), anything else goes to the stack
 *   cil_to_overlay      tc egress of the VXLAN device: packets the host stack routes into the
 *                       device (the node's own) get their tunnel key here, and the driver builds
 *                       the outer headers; the outer source address is the one the underlay
 *                       route to the tunnel endpoint picks
 *   cil_vxlan_from_underlay  the from-netdev pre hook (cilia_tc_slots, PRE), which host.o's
 *                       cil_from_netdev on the underlay runs first: VXLAN to this node for a
 *                       local pod is taken apart here and delivered like cil_from_overlay does,
 *                       without the trip through the UDP socket, the driver and its GRO cells;
 *                       anything else goes back to the base and on to the device as before */
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
#include "lib/udp_tunnel.h"

/* The VNI carries 24 bits; identities above that cannot cross the wire. */
#define VXLAN_VNI_MASK 0xffffff
#define VXLAN_OUTER_TTL 64

/* Set by the plugin when it loads the object (the device exists by then). */
CILIA_CONST(__u32, VXLAN_IFINDEX, 0);
/* This node's tunnel endpoint (network order): entries pointing at it are not remote. */
CILIA_CONST(__u32, LOCAL_TUNNEL_ENDPOINT, 0);
/* The device's UDP port (host order): what the underlay receive program takes. */
CILIA_CONST(__u16, VXLAN_PORT, 8472);

/* RFC 7348: flags byte 0x08 (the VNI is valid), everything else reserved. */
struct vxlan_hdr {
	__u8 flags;
	__u8 reserved1[3];
	__u8 vni[3];
	__u8 reserved2;
};
_Static_assert(sizeof(struct vxlan_hdr) == CILIA_TUNNEL_HDR_LEN, "the tunnel header udp_tunnel.h makes room for");

#define VXLAN_F_VNI 0x08

/* Every node's VXLAN device has the MAC 02:c1:<its tunnel endpoint's 4 bytes>, so a sender
 * writes the receiver's device MAC as the inner destination without asking (a receiving stack
 * then takes what it does not deliver itself as its own) and its own as the source (the
 * receiving driver drops frames whose source is its own MAC as loops). */
static __always_inline void device_mac(__u8 *mac, __be32 endpoint)
{
	mac[0] = 0x02;
	mac[1] = 0xc1;
	__builtin_memcpy(mac + 2, &endpoint, 4);
}

/* Addresses the frame to the device of `endpoint` (the stack sent it to this node's own). */
static __always_inline int set_inner_dst_mac(struct __sk_buff *skb, __be32 endpoint)
{
	__u8 mac[6];

	device_mac(mac, endpoint);
	return bpf_skb_store_bytes(skb, 0, mac, sizeof(mac), 0) < 0 ? -1 : 0;
}

static __always_inline int set_tunnel_key(struct __sk_buff *skb, __be32 endpoint, __u32 identity)
{
	struct bpf_tunnel_key key = {
		.tunnel_id = identity & VXLAN_VNI_MASK,
		.remote_ipv4 = bpf_ntohl(endpoint),
		.tunnel_ttl = VXLAN_OUTER_TTL,
	};

	/* An outer UDP checksum of 0 is valid over IPv4 and saves a pass over the payload. */
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX);
}

/* ---- from-container forward slot ---------------------------------------------------- */

/* Encapsulates towards `endpoint` and redirects to the underlay. Returns a tc verdict, or 0
 * with *reason set. */
static __always_inline int vxlan_encap_redirect(struct __sk_buff *skb, __be32 endpoint, __u32 identity,
						__u32 *out_ifindex, __u8 *reason)
{
	__u32 vni = identity & VXLAN_VNI_MASK;
	struct vxlan_hdr vx = {
		.flags = VXLAN_F_VNI,
		.vni = { (__u8)(vni >> 16), (__u8)(vni >> 8), (__u8)vni },
	};
	struct ethhdr inner = { .h_proto = bpf_htons(ETH_P_IP) };

	device_mac(inner.h_dest, endpoint);
	device_mac(inner.h_source, LOCAL_TUNNEL_ENDPOINT);
	return cilia_udp_tunnel_redirect(skb, (const __u8 *)&vx, LOCAL_TUNNEL_ENDPOINT, endpoint, VXLAN_PORT, &inner,
					 out_ifindex, reason);
}

SEC("tc")
int cil_vxlan_forward(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;
	struct cilia_tuple t;
	__be32 endpoint;
	__u32 ifindex = 0;
	__u8 reason;
	int r;

	cilia_ctx_load(skb, &ctx);
	if (ctx.drop_reason || (ctx.flags & (CILIA_CTX_F_LOCAL_DST | CILIA_CTX_F_HOST_DST)))
		goto next;
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		goto next;
	endpoint = cilia_overlay_remote_endpoint(t.daddr, LOCAL_TUNNEL_ENDPOINT);
	if (!endpoint)
		goto next;
	/* The datapath routes the packet itself, as the host stack would have. */
	r = cilia_ipv4_dec_ttl(skb);
	if (r)
		return cilia_drop(skb, &ctx, &t, r, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	r = vxlan_encap_redirect(skb, endpoint, ctx.src_identity, &ifindex, &reason);
	if (!r)
		return cilia_drop(skb, &ctx, &t, reason, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	ctx.target_ifindex = ifindex;
	cilia_forwarded(skb, &ctx, &t, CILIA_TRACE_TO_NETWORK, CILIA_AP_FROM_CONTAINER, CILIA_DIR_EGRESS);
	return r;
next:
	/* Not for the overlay: the base default (local delivery or the host stack). */
	cilia_slot_next(skb, &ctx);
	return TC_ACT_OK;
}

/* ---- VXLAN device ingress ------------------------------------------------------------- */

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct bpf_tunnel_key key = {};
	struct cilia_endpoint_info *ep;
	struct cilia_tuple t;
	__u8 reason;
	int r;

	r = cilia_tuple_parse4(skb, &t, &reason);
	if (r == CILIA_PARSE_ARP || r == CILIA_PARSE_OTHER)
		return TC_ACT_OK;
	if (r != CILIA_PARSE_IPV4)
		return cilia_drop(skb, &ctx, NULL, CILIA_DROP_DECAP_FAILED, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_DECAP_FAILED, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	ctx.src_identity = cilia_identity_from_tunnel(key.tunnel_id);
	ep = cilia_endpoint_lookup4(t.daddr);
	if (!ep || (ep->flags & CILIA_ENDPOINT_F_HOST))
		return TC_ACT_OK; /* for the node itself */
	return cilia_overlay_deliver(skb, &ctx, &t, ep);
}

/* ---- VXLAN device egress -------------------------------------------------------------- */

SEC("tc")
int cil_to_overlay(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct bpf_tunnel_key key = {};
	struct cilia_tuple t;
	__be32 endpoint;

	/* Keyed already (by an earlier version's forward slot, or another program). */
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) == 0)
		return TC_ACT_OK;
	if (cilia_overlay_from_stack(skb, &ctx, &t) < 0)
		return TC_ACT_SHOT;
	endpoint = cilia_overlay_stack_endpoint(skb, t.saddr, t.daddr, LOCAL_TUNNEL_ENDPOINT, VXLAN_IFINDEX);
	if (!endpoint)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_NO_TUNNEL_ENDPOINT, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	/* The stack addressed the frame to this node's own device MAC (NOARP). */
	if (set_tunnel_key(skb, endpoint, ctx.src_identity) < 0 || set_inner_dst_mac(skb, endpoint) < 0)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_ENCAP_FAILED, CILIA_AP_TO_NETDEV, CILIA_DIR_EGRESS);
	return TC_ACT_OK;
}

/* ---- underlay ingress (from-netdev pre hook) ------------------------------------------ */


/* Where the inner IPv4 header starts when the packet is VXLAN to this node, from the port the
 * device listens on, with only the VNI flag (the driver keeps any extension), carrying IPv4
 * for a local pod; else 0. *vni is the VNI, *ep the pod. Headers that are not in the linear
 * data also give 0: the device then takes the packet as before. */
static __always_inline int vxlan_pod_inner_offset(struct __sk_buff *skb, __u32 *vni, struct cilia_endpoint_info **ep)
{
	struct cilia_cursor cur = cilia_cursor_skb(skb);
	struct ethhdr *eth = cilia_take(&cur, sizeof(*eth));
	struct vxlan_hdr *vx;
	struct iphdr *ip, *inner_ip;
	struct ethhdr *inner;
	struct udphdr *udp;
	struct cilia_endpoint_info *e;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = cilia_take_ipv4(&cur);
	if (!ip || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(CILIA_IPV4_FRAG_MASK)) ||
	    !LOCAL_TUNNEL_ENDPOINT || ip->daddr != LOCAL_TUNNEL_ENDPOINT)
		return 0;
	udp = cilia_take(&cur, sizeof(*udp));
	if (!udp || udp->dest != bpf_htons(VXLAN_PORT))
		return 0;
	vx = cilia_take(&cur, sizeof(*vx));
	if (!vx || vx->flags != VXLAN_F_VNI)
		return 0;
	inner = cilia_take(&cur, sizeof(*inner));
	if (!inner || inner->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	inner_ip = cilia_take(&cur, sizeof(*inner_ip));
	if (!inner_ip)
		return 0;
	e = cilia_endpoint_lookup4(inner_ip->daddr);
	if (!e || (e->flags & CILIA_ENDPOINT_F_HOST))
		return 0;
	*vni = ((__u32)vx->vni[0] << 16) | ((__u32)vx->vni[1] << 8) | vx->vni[2];
	*ep = e;
	return (int)((long)inner_ip - (long)skb->data);
}

SEC("tc")
int cil_vxlan_from_underlay(struct __sk_buff *skb)
{
	struct cilia_ctx ctx = { .slot = CILIA_SLOT_NONE };
	struct cilia_endpoint_info *ep = NULL;
	struct cilia_tuple t;
	__u32 vni = 0;
	__u8 reason;
	int inner;

	inner = vxlan_pod_inner_offset(skb, &vni, &ep);
	if (inner <= ETH_HLEN || !ep)
		return cilia_pre_continue(skb, CILIA_AP_FROM_NETDEV);
	/* Keep the outer Ethernet header (delivery rewrites its MACs), drop the outer IPv4, UDP and
	 * VXLAN headers and the inner Ethernet header. The pod MTU left room for them: keep
	 * gso_size. A failed shrink leaves the packet as it was: the device takes it. */
	if (bpf_skb_adjust_room(skb, -(inner - ETH_HLEN), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return cilia_pre_continue(skb, CILIA_AP_FROM_NETDEV);
	ctx.src_identity = cilia_identity_from_tunnel(vni);
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return cilia_drop(skb, &ctx, NULL, CILIA_DROP_DECAP_FAILED, CILIA_AP_FROM_NETDEV, CILIA_DIR_INGRESS);
	return cilia_overlay_deliver(skb, &ctx, &t, ep);
}

char LICENSE[] SEC("license") = "GPL";
