/* SPDX-License-Identifier: Apache-2.0 */
/* An IPv4 packet summarised for conntrack, NAT and events: addresses, ports, protocol, TCP
 * flags and where the L4 header starts. The datapath re-reads it in every stage instead of
 * keeping packet pointers, because helpers that rewrite the packet invalidate them. */
#ifndef CILIA_LIB_TUPLE_H
#define CILIA_LIB_TUPLE_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include "lib/fragments.h"
#include "lib/parse.h"

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

/* Result of cilia_tuple_parse4 besides a tuple. */
enum cilia_parse_result {
	CILIA_PARSE_IPV4 = 0,  /* tuple filled */
	CILIA_PARSE_ARP = 1,   /* ARP: let it pass */
	CILIA_PARSE_OTHER = 2, /* another L3 protocol (reason in *reason) */
	CILIA_PARSE_DROP = 3,  /* malformed (reason in *reason) */
};

struct cilia_tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* ICMP echo: the identifier */
	__be16 dport; /* ICMP echo: the identifier */
	__u8 proto;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 tracked; /* 1 when conntrack and NAT apply (TCP, UDP, ICMP echo) */
	__u16 l4_off; /* from the start of the frame */
	__u8 frag;    /* enum cilia_tuple_frag */
	__u8 pad;
};

enum cilia_tuple_frag {
	CILIA_TUPLE_NOT_FRAGMENT = 0,
	CILIA_TUPLE_FIRST_FRAGMENT = 1, /* L4 header here; its ports kept for the rest */
	CILIA_TUPLE_LATER_FRAGMENT = 2, /* no L4 header: ports from the first; only addresses may be rewritten */
};

#define CILIA_IPV4_FRAG_MASK (CILIA_IPV4_MF | CILIA_IPV4_OFFSET_MASK)

static __always_inline int cilia_tuple_parse4(struct __sk_buff *skb, struct cilia_tuple *t, __u8 *reason)
{
	struct cilia_cursor cur = cilia_cursor_skb(skb);
	struct ethhdr *eth = cilia_take(&cur, sizeof(*eth));
	struct cilia_ipv4_frag_key fk;
	struct iphdr *ip;

	__builtin_memset(t, 0, sizeof(*t));
	*reason = CILIA_DROP_INVALID_PACKET;
	if (!eth)
		return CILIA_PARSE_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return CILIA_PARSE_ARP;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		*reason = CILIA_DROP_UNSUPPORTED_L3;
		return CILIA_PARSE_OTHER;
	}
	ip = cilia_take_ipv4(&cur);
	if (!ip || ip->version != 4)
		return CILIA_PARSE_DROP;
	t->saddr = ip->saddr;
	t->daddr = ip->daddr;
	t->proto = ip->protocol;
	t->l4_off = (__u16)((long)cur.pos - (long)skb->data);
	if (ip->frag_off & bpf_htons(CILIA_IPV4_FRAG_MASK)) {
		struct cilia_ipv4_frag_l4 *first;

		cilia_frag_key(&fk, ip);
		if (!cilia_frag_is_later(ip)) {
			t->frag = CILIA_TUPLE_FIRST_FRAGMENT;
		} else {
			/* Only what the parser tracks (TCP, UDP, ICMP echo) is remembered. */
			first = cilia_frag_recall(&fk);
			if (!first) {
				*reason = CILIA_DROP_FRAGMENT;
				return CILIA_PARSE_DROP;
			}
			t->frag = CILIA_TUPLE_LATER_FRAGMENT;
			t->sport = first->sport;
			t->dport = first->dport;
			t->icmp_type = first->icmp_type;
			t->tracked = 1;
			return CILIA_PARSE_IPV4;
		}
	}
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = cilia_take(&cur, sizeof(*tcp));

		if (!tcp)
			return CILIA_PARSE_DROP;
		t->sport = tcp->source;
		t->dport = tcp->dest;
		t->tcp_flags = ((__u8 *)tcp)[13];
		t->tracked = 1;
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = cilia_take(&cur, sizeof(*udp));

		if (!udp)
			return CILIA_PARSE_DROP;
		t->sport = udp->source;
		t->dport = udp->dest;
		t->tracked = 1;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct cilia_icmphdr *icmp = cilia_take(&cur, sizeof(*icmp));

		if (!icmp)
			return CILIA_PARSE_DROP;
		t->icmp_type = icmp->type;
		if (icmp->type == ICMP_ECHO_REQUEST || icmp->type == ICMP_ECHO_REPLY) {
			t->sport = icmp->id;
			t->dport = icmp->id;
			t->tracked = 1;
		}
	}
	if (t->frag == CILIA_TUPLE_FIRST_FRAGMENT && t->tracked)
		cilia_frag_remember(&fk, t->sport, t->dport, t->icmp_type);
	return CILIA_PARSE_IPV4;
}

#define CILIA_TCP_FIN 0x01
#define CILIA_TCP_SYN 0x02
#define CILIA_TCP_RST 0x04
#define CILIA_TCP_ACK 0x10

#endif /* CILIA_LIB_TUPLE_H */
