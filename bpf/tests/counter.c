/* SPDX-License-Identifier: Apache-2.0 */
/* Counts IPv4 UDP packets to one port, per program version, in a map pinned by name so two
 * loaded versions share it: used to prove tc replacement never leaves a packet unseen. */
#include "cilia/common.h"
#include "lib/parse.h"

CILIA_CONST(__u32, version, 0);
CILIA_CONST(__u16, udp_port, 0);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} version_hits SEC(".maps");

SEC("tc")
int cls_count(struct __sk_buff *skb)
{
	struct cilia_cursor cur = cilia_cursor_skb(skb);
	struct ethhdr *eth = cilia_take(&cur, sizeof(*eth));
	struct iphdr *ip;
	struct udphdr *udp;
	__u32 key = version;
	__u64 *hits;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = cilia_take_ipv4(&cur);
	if (!ip || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	udp = cilia_take(&cur, sizeof(*udp));
	if (!udp || udp->dest != bpf_htons(udp_port))
		return TC_ACT_OK;
	hits = bpf_map_lookup_elem(&version_hits, &key);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
