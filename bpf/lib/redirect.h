/* SPDX-License-Identifier: Apache-2.0 */
/* Delivery to a local endpoint without a trip through the host stack: the datapath acts as
 * the pod's gateway router (TTL decremented, Ethernet header rewritten host veth MAC → pod
 * MAC) and the packet jumps straight to the pod-side interface's ingress with
 * bpf_redirect_peer. That helper only works from a tc ingress hook; callers on egress hand
 * the packet on instead. */
#ifndef CILIA_LIB_REDIRECT_H
#define CILIA_LIB_REDIRECT_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include "cilia/maps.h"
#include <linux/if_ether.h>
#include <linux/ip.h>

_Static_assert(__builtin_offsetof(struct cilia_endpoint_info, host_mac) ==
		       __builtin_offsetof(struct cilia_endpoint_info, mac) + ETH_ALEN,
	       "mac, host_mac are the Ethernet destination and source, in that order");

/* Ethernet destination = the pod, source = its gateway (the host veth): one store. */
static __always_inline int cilia_set_macs(struct __sk_buff *skb, const struct cilia_endpoint_info *ep)
{
	return bpf_skb_store_bytes(skb, 0, ep->mac, 2 * ETH_ALEN, 0) < 0 ? -1 : 0;
}

#define CILIA_IPV4_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define CILIA_IPV4_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

/* Decrements the IPv4 TTL as a router hop does; returns 0 or a drop reason. */
static __always_inline int cilia_ipv4_dec_ttl(struct __sk_buff *skb)
{
	__u8 word[2]; /* ttl, protocol: the 16-bit word the checksum sees */
	__be16 old_word, new_word;

	if (bpf_skb_load_bytes(skb, CILIA_IPV4_TTL_OFF, word, 2) < 0)
		return CILIA_DROP_INVALID_PACKET;
	if (word[0] <= 1)
		return CILIA_DROP_TTL_EXCEEDED;
	__builtin_memcpy(&old_word, word, 2);
	word[0] -= 1;
	__builtin_memcpy(&new_word, word, 2);
	if (bpf_l3_csum_replace(skb, CILIA_IPV4_CSUM_OFF, old_word, new_word, 2) < 0 ||
	    bpf_skb_store_bytes(skb, CILIA_IPV4_TTL_OFF, word, 1, 0) < 0)
		return CILIA_DROP_REWRITE_FAILED;
	return 0;
}

/* 1: packets from pods to the outside go straight to the egress device the kernel's FIB
 * names (bpf_redirect, or bpf_redirect_neigh while the next hop's MAC is unresolved),
 * bypassing the host stack's forwarding and netfilter; 0: the host stack routes them. */
CILIA_CONST(__u8, HOST_ROUTING, 0);

/* Routes an IPv4 packet to its egress device without the host stack. Returns a tc verdict,
 * 0 with *reason set to drop it, or -1 when the host stack must handle it (no route, a local
 * destination, forwarding disabled, fragmentation needed, ...). */
static __always_inline int cilia_route_out4(struct __sk_buff *skb, __be32 saddr, __be32 daddr, __u8 *reason)
{
	struct bpf_fib_lookup fib = {
		.family = 2, /* AF_INET */
		.ifindex = skb->ifindex,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
		/* tot_len 0: the kernel checks the MTU against the skb itself, GSO-aware. */
	};
	long r = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	int ttl;

	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return -1;
	ttl = cilia_ipv4_dec_ttl(skb);
	if (ttl) {
		*reason = ttl;
		return 0;
	}
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0) < 0) {
		*reason = CILIA_DROP_REWRITE_FAILED;
		return 0;
	}
	return bpf_redirect(fib.ifindex, 0);
}

/* Returns TC_ACT_REDIRECT, or 0 with *reason set when the packet must be dropped. */
static __always_inline int cilia_redirect_to_endpoint(struct __sk_buff *skb, const struct cilia_endpoint_info *ep,
						      __u8 *reason)
{
	int r = cilia_ipv4_dec_ttl(skb);

	if (r) {
		*reason = r;
		return 0;
	}
	if (cilia_set_macs(skb, ep)) {
		*reason = CILIA_DROP_REWRITE_FAILED;
		return 0;
	}
	return bpf_redirect_peer(ep->host_ifindex, 0);
}

#endif /* CILIA_LIB_REDIRECT_H */
