/* SPDX-License-Identifier: Apache-2.0 */
/* ICMP errors the datapath answers with itself (RFC 792): the packet it refuses turned, in
 * place, into a destination unreachable message back to its sender — from the address the
 * sender wrote to, quoting the refused packet's IPv4 header and first 8 bytes of payload, as a
 * router or host would. A TCP client takes port unreachable as ECONNREFUSED at once, a UDP
 * client gets ECONNREFUSED on its next call: no time-out. */
#ifndef CILIA_LIB_ICMP_H
#define CILIA_LIB_ICMP_H

#include "cilia/common.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include "lib/parse.h"

#define CILIA_ICMP_DEST_UNREACH 3
#define CILIA_ICMP_PORT_UNREACH 3
/* The quoted part of the refused packet: its IPv4 header (without options) and 8 bytes. */
#define CILIA_ICMP_QUOTE_LEN (sizeof(struct iphdr) + 8)

/* The whole answer, as written to the packet from `eth` on (`lead` aligns the IPv4 header). */
struct cilia_icmp4_error {
	__u8 lead[2];
	struct ethhdr eth;
	struct iphdr ip;
	struct cilia_icmphdr icmp;
	__u8 quote[CILIA_ICMP_QUOTE_LEN];
};

#define CILIA_ICMP4_ERROR_LEN (sizeof(struct cilia_icmp4_error) - 2)

static __always_inline __u16 cilia_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Rewrites the packet (IPv4 without options, Ethernet) into an ICMP `type`/`code` error to its
 * sender, Ethernet addresses swapped, so the caller can send it back where it came from.
 * Returns 0, or -1 when the packet cannot be turned around (IP options, too short, a helper
 * failed): then drop it. */
static __always_inline int cilia_icmp4_reply_error(struct __sk_buff *skb, __u8 type, __u8 code)
{
	struct cilia_icmp4_error e = {};
	struct ethhdr eth;
	__s64 sum;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, e.quote, sizeof(e.quote)) < 0)
		return -1;
	if (e.quote[0] != 0x45) /* IPv4, no options */
		return -1;
	__builtin_memcpy(e.eth.h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(e.eth.h_source, eth.h_dest, ETH_ALEN);
	e.eth.h_proto = bpf_htons(ETH_P_IP);
	e.ip.version = 4;
	e.ip.ihl = 5;
	e.ip.tot_len = bpf_htons(CILIA_ICMP4_ERROR_LEN - ETH_HLEN);
	e.ip.ttl = 64;
	e.ip.protocol = IPPROTO_ICMP;
	/* From the address the refused packet went to, back to its source. */
	__builtin_memcpy(&e.ip.saddr, e.quote + offsetof(struct iphdr, daddr), 4);
	__builtin_memcpy(&e.ip.daddr, e.quote + offsetof(struct iphdr, saddr), 4);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&e.ip, sizeof(e.ip), 0);
	if (sum < 0)
		return -1;
	e.ip.check = cilia_csum_fold(sum);
	e.icmp.type = type;
	e.icmp.code = code;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&e.icmp, sizeof(e.icmp) + sizeof(e.quote), 0);
	if (sum < 0)
		return -1;
	e.icmp.checksum = cilia_csum_fold(sum);
	if (bpf_skb_change_tail(skb, CILIA_ICMP4_ERROR_LEN, 0) < 0 || bpf_skb_store_bytes(skb, 0, &e.eth, CILIA_ICMP4_ERROR_LEN, 0) < 0)
		return -1;
	return 0;
}

#endif /* CILIA_LIB_ICMP_H */
