/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 fragments: the first fragment of a datagram leaves its ports here for the others, which
 * carry no L4 header (Cilium's IPv4 fragment tracking). A later fragment whose first was not
 * seen (lost, or overtaken) has no ports to be judged by and is dropped; the sender's kernel
 * sends fragments in order. */
#ifndef CILIA_LIB_FRAGMENTS_H
#define CILIA_LIB_FRAGMENTS_H

#include "cilia/common.h"
#include "cilia/maps.h"
#include <linux/ip.h>

#define CILIA_IPV4_MF 0x2000          /* more fragments follow */
#define CILIA_IPV4_OFFSET_MASK 0x1fff /* fragment offset, 8-byte units */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_IPV4_FRAGS_MAX);
	__type(key, struct cilia_ipv4_frag_key);
	__type(value, struct cilia_ipv4_frag_l4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_ipv4_frags SEC(".maps");

static __always_inline void cilia_frag_key(struct cilia_ipv4_frag_key *k, const struct iphdr *ip)
{
	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->id = ip->id;
	k->proto = ip->protocol;
	k->pad = 0;
}

/* Whether `ip` is a fragment after the first (no L4 header). */
static __always_inline int cilia_frag_is_later(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(CILIA_IPV4_OFFSET_MASK)) != 0;
}

/* The first fragment's ports, for the fragments that follow. */
static __always_inline void cilia_frag_remember(const struct cilia_ipv4_frag_key *k, __be16 sport, __be16 dport,
						__u8 icmp_type)
{
	struct cilia_ipv4_frag_l4 l4 = { .sport = sport, .dport = dport, .icmp_type = icmp_type };

	bpf_map_update_elem(&cilia_ipv4_frags, k, &l4, BPF_ANY);
}

/* The ports of the datagram a later fragment belongs to, NULL when its first was not seen. */
static __always_inline struct cilia_ipv4_frag_l4 *cilia_frag_recall(const struct cilia_ipv4_frag_key *k)
{
	return bpf_map_lookup_elem(&cilia_ipv4_frags, k);
}

#endif /* CILIA_LIB_FRAGMENTS_H */
