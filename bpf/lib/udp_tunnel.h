/* SPDX-License-Identifier: Apache-2.0 */
/* Sending a pod's packet to another node inside outer IPv4/UDP headers built here — VXLAN and
 * Geneve alike: an 8-byte tunnel header, then the inner Ethernet frame — straight out of the
 * underlay device the FIB names. No tunnel device, no route lookup of its own, no trip through
 * the host stack's output path: one helper call grows the packet, one store writes the headers. */
#ifndef CILIA_LIB_UDP_TUNNEL_H
#define CILIA_LIB_UDP_TUNNEL_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define CILIA_TUNNEL_HDR_LEN 8

/* Everything inserted between the outer Ethernet header and the inner IPv4 header. */
struct cilia_udp_tunnel_encap {
	struct iphdr ip;
	struct udphdr udp;
	__u8 tunnel[CILIA_TUNNEL_HDR_LEN];
	struct ethhdr inner;
} __attribute__((packed));

/* 50 bytes: what the pod MTU gives up to the outer headers. */
#define CILIA_UDP_TUNNEL_OVERHEAD ((__u32)sizeof(struct cilia_udp_tunnel_encap))
_Static_assert(sizeof(struct cilia_udp_tunnel_encap) == 50, "IPv4 20 + UDP 8 + tunnel header 8 + Ethernet 14");

/* Room for the outer IPv4 and UDP headers and an Ethernet payload: GSO then segments the inner
 * packet and repeats the outer headers (SKB_GSO_UDP_TUNNEL), as for a tunnel device's. */
#define CILIA_UDP_TUNNEL_ENCAP_FLAGS                                                              \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |   \
	 BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))

/* The outer source port spreads flows over the underlay's ECMP paths and RSS queues (RFC 7348,
 * RFC 8926): one port per inner flow, from the dynamic range 49152-65535. */
static __always_inline __be16 cilia_tunnel_sport(__u32 flow_hash)
{
	return bpf_htons((__u16)(49152 + (flow_hash & 0x3fff)));
}

static __always_inline __u16 cilia_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The headers that go in front of the pod's IPv4 packet. Lengths count from the outer IPv4
 * header: `inner_l3_len` is the pod's IPv4 packet (its Ethernet header excluded). */
static __always_inline void cilia_udp_tunnel_headers(struct cilia_udp_tunnel_encap *h, __be32 saddr, __be32 daddr,
						     __be16 sport, __u16 dport, const __u8 *tunnel_hdr,
						     __u32 inner_l3_len, const struct ethhdr *inner_eth)
{
	__u32 udp_len = sizeof(struct udphdr) + CILIA_TUNNEL_HDR_LEN + ETH_HLEN + inner_l3_len;
	__u32 ip_len = sizeof(struct iphdr) + udp_len;

	/* A BIG TCP packet (GSO, over 64 KiB) does not fit the 16-bit length fields: both say 0,
	 * as the kernel's own BIG TCP does for IPv4 (and for UDP tunnels since 6.19); segmentation
	 * writes each segment's real lengths, and the receiving node's eBPF decapsulates it before
	 * anything reads them. */
	if (ip_len > 0xffff)
		ip_len = udp_len = 0;
	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.ttl = 64,
		.protocol = IPPROTO_UDP,
		.tot_len = bpf_htons((__u16)ip_len),
		.saddr = saddr,
		.daddr = daddr,
	};

	/* Built apart: the packed struct gives no aligned pointer for the checksum. */
	ip.check = cilia_ipv4_csum(&ip);
	__builtin_memset(h, 0, sizeof(*h));
	__builtin_memcpy(&h->ip, &ip, sizeof(ip));
	h->udp.source = sport;
	h->udp.dest = bpf_htons(dport);
	h->udp.len = bpf_htons((__u16)udp_len);
	/* Checksum 0: allowed for UDP over IPv4, and the inner packet carries its own. */
	h->udp.check = 0;
	__builtin_memcpy(h->tunnel, tunnel_hdr, CILIA_TUNNEL_HDR_LEN);
	__builtin_memcpy(&h->inner, inner_eth, sizeof(*inner_eth));
}

/* Encapsulates the pod's IPv4 packet towards `remote` (UDP port `dport`, `tunnel_hdr` after the
 * UDP header) and redirects it to the underlay. `local` is the outer source (network order; 0:
 * the FIB picks one); `inner` the inner Ethernet header (NULL: the pod's frame keeps its own).
 * Returns a tc verdict, or 0 with *reason set. The FIB runs first, so a remote the underlay
 * cannot reach leaves the packet untouched. Forwarding must be on for the pod's veth (the base
 * datapath needs it too): the lookup is a router's, as if the packet came in on it. */
static __always_inline int cilia_udp_tunnel_redirect(struct __sk_buff *skb, const __u8 *tunnel_hdr, __be32 local,
						     __be32 remote, __u16 dport, const struct ethhdr *inner,
						     __u32 *out_ifindex, __u8 *reason)
{
	struct bpf_fib_lookup fib = {
		.family = 2, /* AF_INET */
		.ifindex = skb->ifindex,
		.ipv4_src = local,
		.ipv4_dst = remote,
	};
	struct cilia_udp_tunnel_encap h;
	struct ethhdr eth;
	__u32 inner_l3_len = skb->len - ETH_HLEN;
	long r;

	*reason = CILIA_DROP_ENCAP_FAILED;
	/* Over 64 KiB only as a GSO packet (BIG TCP), which segmentation cuts to the MTU. */
	if (inner_l3_len > 0xffff - CILIA_UDP_TUNNEL_OVERHEAD && !skb->gso_size)
		return 0;
	r = bpf_fib_lookup(skb, &fib, sizeof(fib), local ? 0 : BPF_FIB_LOOKUP_SRC);
	if (r != BPF_FIB_LKUP_RET_SUCCESS && r != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	if (bpf_skb_load_bytes(skb, 0, &eth, ETH_HLEN) < 0)
		return 0;
	cilia_udp_tunnel_headers(&h, fib.ipv4_src, remote, cilia_tunnel_sport(bpf_get_hash_recalc(skb)), dport,
				 tunnel_hdr, inner_l3_len, inner ? inner : &eth);
	if (bpf_skb_adjust_room(skb, CILIA_UDP_TUNNEL_OVERHEAD, BPF_ADJ_ROOM_MAC, CILIA_UDP_TUNNEL_ENCAP_FLAGS) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0) < 0)
		return 0;
	*out_ifindex = fib.ifindex;
	/* The next hop's MAC is not resolved yet: the kernel resolves it and fills the outer
	 * Ethernet header (from the outer IPv4 destination). */
	if (r == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	__builtin_memcpy(eth.h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth.h_source, fib.smac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, 0, &eth, ETH_HLEN, 0) < 0)
		return 0;
	return bpf_redirect(fib.ifindex, 0);
}

#endif /* CILIA_LIB_UDP_TUNNEL_H */
