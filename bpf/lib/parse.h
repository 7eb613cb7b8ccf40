/* SPDX-License-Identifier: Apache-2.0 */
/* Bounds-checked header access for tc (__sk_buff) and XDP programs. */
#ifndef CILIA_LIB_PARSE_H
#define CILIA_LIB_PARSE_H

#include "cilia/common.h"
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>

/* linux/icmp.h drags in libc headers that do not build for -target bpf; ICMP and ICMPv6
 * share this leading layout. */
struct cilia_icmphdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;
	__be16 seq;
};

/* A cursor over linear packet data: `pos` advances as headers are taken. */
struct cilia_cursor {
	void *pos;
	void *end;
};

/* Returns a pointer to the next `len` bytes and advances, or NULL when the packet is shorter. */
#define cilia_take(cur, len)                                              \
	({                                                                    \
		void *__p = (cur)->pos;                                       \
		if ((void *)((char *)__p + (len)) > (cur)->end)               \
			__p = NULL;                                           \
		else                                                          \
			(cur)->pos = (char *)__p + (len);                     \
		__p;                                                          \
	})

static __always_inline struct cilia_cursor cilia_cursor_skb(struct __sk_buff *skb)
{
	struct cilia_cursor cur = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	return cur;
}

static __always_inline struct cilia_cursor cilia_cursor_xdp(struct xdp_md *ctx)
{
	struct cilia_cursor cur = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	return cur;
}

/* IPv4 header including options, or NULL. */
static __always_inline struct iphdr *cilia_take_ipv4(struct cilia_cursor *cur)
{
	struct iphdr *ip = cilia_take(cur, sizeof(struct iphdr));

	if (!ip || ip->ihl < 5)
		return NULL;
	if (ip->ihl > 5 && !cilia_take(cur, (ip->ihl - 5) * 4))
		return NULL;
	return ip;
}

#endif /* CILIA_LIB_PARSE_H */
