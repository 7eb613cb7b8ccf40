/* SPDX-License-Identifier: Apache-2.0 */
/* The L7 proxy's marks (include/cilia/mark.h): the policy slot asks for a redirect, the
 * l7-redirect slot carries it out, to-container reads the original source's identity off the
 * proxy's upstream packets. */
#ifndef CILIA_LIB_PROXY_H
#define CILIA_LIB_PROXY_H

#include "cilia/common.h"
#include "cilia/mark.h"

CILIA_BTF_ENUM_ANCHOR(cilia_mark);

static __always_inline int cilia_mark_from_proxy(const struct __sk_buff *skb)
{
	return (skb->mark & CILIA_MARK_MAGIC_MASK) == CILIA_MARK_FROM_PROXY;
}

/* The original source's identity a proxy upstream packet carries (FROM_PROXY only). */
static __always_inline __u32 cilia_mark_proxy_identity(const struct __sk_buff *skb)
{
	return (skb->mark >> 16) | ((skb->mark & 0xff) << 16);
}

/* Policy allowed the packet with a proxy port: the l7-redirect slot is to hand it to the proxy.
 * The proxy's own upstream packets keep their mark: they are never redirected twice. */
static __always_inline void cilia_mark_to_proxy(struct __sk_buff *skb, __be16 proxy_port)
{
	if (!proxy_port || cilia_mark_from_proxy(skb))
		return;
	skb->mark = ((__u32)bpf_ntohs(proxy_port) << 16) | CILIA_MARK_TO_PROXY;
}

/* The proxy port of a packet the policy slot marked, else 0. */
static __always_inline __u16 cilia_mark_proxy_port(const struct __sk_buff *skb)
{
	if ((skb->mark & CILIA_MARK_MAGIC_MASK) != CILIA_MARK_TO_PROXY)
		return 0;
	return skb->mark >> 16;
}

#endif /* CILIA_LIB_PROXY_H */
