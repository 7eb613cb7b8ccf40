/* SPDX-License-Identifier: Apache-2.0 */
/* A small packet pipeline for the test harness: deny by {source, protocol, port}, answer
 * ICMP echo requests in place, decrement TTL / hop limit on what passes, count per protocol. */
#include "cilia/common.h"
#include "lib/parse.h"

struct deny_key {
	__be32 saddr;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

enum { STAT_TCP, STAT_UDP, STAT_ICMP, STAT_IPV6, STAT_DROP, STAT_OTHER, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct deny_key);
	__type(value, __u32); /* drop counter for this rule */
} deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &stat);

	if (n)
		*n += 1;
}

#define ETH_LEN sizeof(struct ethhdr)
#define IP_CSUM_OFF (ETH_LEN + offsetof(struct iphdr, check))
#define IP_TTL_OFF (ETH_LEN + offsetof(struct iphdr, ttl))

static __always_inline int handle_ipv6(struct __sk_buff *skb, struct cilia_cursor *cur)
{
	struct ipv6hdr *ip6 = cilia_take(cur, sizeof(*ip6));

	count(STAT_IPV6);
	if (!ip6)
		return TC_ACT_SHOT;
	if (ip6->hop_limit <= 1)
		return TC_ACT_SHOT;
	ip6->hop_limit -= 1;
	return TC_ACT_OK;
}

static __always_inline int echo_reply(struct __sk_buff *skb, struct iphdr *ip, struct cilia_icmphdr *icmp,
				      __u32 icmp_off)
{
	struct ethhdr *eth = (void *)(long)skb->data;
	__u8 mac[ETH_ALEN];
	__be32 addr;
	__be16 old_word, new_word;

	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	/* Swapping the addresses leaves the IPv4 header checksum as it is. */
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	old_word = *(__be16 *)icmp;
	icmp->type = 0; /* echo reply */
	new_word = *(__be16 *)icmp;
	bpf_l4_csum_replace(skb, icmp_off + offsetof(struct cilia_icmphdr, checksum), old_word, new_word, 2);
	return TC_ACT_OK;
}

SEC("tc")
int cls_pipeline(struct __sk_buff *skb)
{
	struct cilia_cursor cur = cilia_cursor_skb(skb);
	struct ethhdr *eth = cilia_take(&cur, sizeof(*eth));
	struct deny_key key = {};
	struct iphdr *ip;
	__u32 *hits;
	__u32 l4_off;

	if (!eth)
		return TC_ACT_SHOT;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return handle_ipv6(skb, &cur);
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(STAT_OTHER);
		return TC_ACT_OK;
	}
	ip = cilia_take_ipv4(&cur);
	if (!ip)
		return TC_ACT_SHOT;
	l4_off = (__u32)((long)cur.pos - (long)skb->data);
	key.saddr = ip->saddr;
	key.proto = ip->protocol;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = cilia_take(&cur, sizeof(*tcp));

		if (!tcp)
			return TC_ACT_SHOT;
		key.dport = tcp->dest;
		count(STAT_TCP);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = cilia_take(&cur, sizeof(*udp));

		if (!udp)
			return TC_ACT_SHOT;
		key.dport = udp->dest;
		count(STAT_UDP);
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct cilia_icmphdr *icmp = cilia_take(&cur, sizeof(*icmp));

		if (!icmp)
			return TC_ACT_SHOT;
		count(STAT_ICMP);
		if (icmp->type == 8 && icmp->code == 0)
			return echo_reply(skb, ip, icmp, l4_off);
	} else {
		count(STAT_OTHER);
	}

	hits = bpf_map_lookup_elem(&deny, &key);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		count(STAT_DROP);
		return TC_ACT_SHOT;
	}
	if (ip->ttl <= 1)
		return TC_ACT_SHOT;
	{
		__u16 old_ttl = bpf_htons((__u16)ip->ttl << 8);
		__u16 new_ttl = bpf_htons((__u16)(ip->ttl - 1) << 8);

		/* The helper may move packet data: no packet pointer is used after it. */
		bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ttl, new_ttl, 2);
		bpf_skb_store_bytes(skb, IP_TTL_OFF, (__u8 *)&new_ttl, 1, 0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
