/* SPDX-License-Identifier: Apache-2.0 */
/* Geneve (RFC 8926) over IPv4/UDP, built and taken apart in eBPF: the kernel has no Geneve
 * device to do it for us. Only what Cilia sends is produced (no options, Ethernet payload,
 * the source's security identity in the VNI); what arrives may carry options, which are
 * skipped unless marked critical. */
#ifndef CILIA_GENEVE_H
#define CILIA_GENEVE_H

#include <cilia/common.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

/* Geneve's payload type for an Ethernet frame (Transparent Ethernet Bridging). */
#define CILIA_ETH_P_TEB 0x6558

#define CILIA_GENEVE_VERSION_MASK 0xc0 /* first byte: version (2 bits) */
#define CILIA_GENEVE_OPTLEN_MASK 0x3f  /* first byte: option length in 4-byte words */
#define CILIA_GENEVE_F_OAM 0x80        /* second byte: a control packet, not for a pod */
#define CILIA_GENEVE_F_CRITICAL 0x40   /* second byte: options the receiver must understand */
#define CILIA_GENEVE_VNI_MAX 0xffffff

struct cilia_genevehdr {
	__u8 ver_optlen;
	__u8 flags;
	__be16 protocol;
	__u8 vni[3];
	__u8 reserved;
};

/* Everything inserted between the outer Ethernet header and the inner IPv4 header. */
struct cilia_geneve_encap {
	struct iphdr ip;
	struct udphdr udp;
	struct cilia_genevehdr geneve;
	struct ethhdr inner;
} __attribute__((packed));

/* 50 bytes: what the pod MTU gives up to the outer headers. */
#define CILIA_GENEVE_OVERHEAD ((__u32)sizeof(struct cilia_geneve_encap))
_Static_assert(sizeof(struct cilia_geneve_encap) == 50, "IPv4 20 + UDP 8 + Geneve 8 + Ethernet 14");

/* The outer source port spreads flows over the underlay's ECMP paths and RSS queues, as
 * RFC 8926 asks: one port per inner flow, from the dynamic range 49152-65535. */
static __always_inline __be16 cilia_geneve_sport(__u32 flow_hash)
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
static __always_inline void cilia_geneve_headers(struct cilia_geneve_encap *h, __be32 saddr, __be32 daddr,
						 __be16 sport, __u16 dport, __u32 vni, __u32 inner_l3_len,
						 const struct ethhdr *inner_eth)
{
	__u16 udp_len = (__u16)(sizeof(struct udphdr) + sizeof(struct cilia_genevehdr) + ETH_HLEN + inner_l3_len);

	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.ttl = 64,
		.protocol = IPPROTO_UDP,
		.tot_len = bpf_htons(sizeof(struct iphdr) + udp_len),
		.saddr = saddr,
		.daddr = daddr,
	};

	/* Built apart: the packed struct gives no aligned pointer for the checksum. */
	ip.check = cilia_ipv4_csum(&ip);
	__builtin_memset(h, 0, sizeof(*h));
	__builtin_memcpy(&h->ip, &ip, sizeof(ip));
	h->udp.source = sport;
	h->udp.dest = bpf_htons(dport);
	h->udp.len = bpf_htons(udp_len);
	/* Checksum 0: allowed for UDP over IPv4, and the inner packet carries its own. */
	h->udp.check = 0;
	h->geneve.protocol = bpf_htons(CILIA_ETH_P_TEB);
	h->geneve.vni[0] = (__u8)(vni >> 16);
	h->geneve.vni[1] = (__u8)(vni >> 8);
	h->geneve.vni[2] = (__u8)vni;
	__builtin_memcpy(&h->inner, inner_eth, sizeof(*inner_eth));
}

static __always_inline __u32 cilia_geneve_vni(const struct cilia_genevehdr *g)
{
	return ((__u32)g->vni[0] << 16) | ((__u32)g->vni[1] << 8) | g->vni[2];
}

#endif /* CILIA_GENEVE_H */
