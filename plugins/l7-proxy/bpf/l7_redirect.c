/* SPDX-License-Identifier: Apache-2.0 */
/* The l7-redirect slot of from-container (an endpoint's egress) and to-container (its ingress):
 * a TCP packet the policy slot marked TO_PROXY (its policy entry has a proxy port) is assigned
 * to the L7 proxy's socket with bpf_sk_assign and handed to the host stack, whose fwmark rule
 * delivers it locally (include/cilia/mark.h). The proxy's transparent listener accepts the
 * connection with the original destination as its local address.
 *
 * The socket: the connection's own one when the proxy accepted it already (looked up with the
 * packet's tuple: an established or half-open socket), else the proxy's listener on the port
 * the mark carries (at PROXY_ADDRESS: bound to loopback, it cannot be reached directly). bpf_sk_assign works only from a tc ingress hook: from-container always
 * runs there, to-container when local delivery or the network entered it (REDIRECTED); a
 * packet the host stack sends to the pod (veth egress) goes on to the pod unproxied.
 * No socket to take it (the proxy is down): dropped as REDIRECT_FAILED, never let through
 * unjudged. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/slots.h"
#include "lib/monitor.h"
#include "lib/proxy.h"
#include "lib/slots.h"
#include "lib/tuple.h"

/* The address the proxy's listeners are bound to (host byte order; 127.0.0.1 by default). */
CILIA_CONST(__u32, PROXY_ADDRESS, 0x7f000001);

static __always_inline struct bpf_sock *proxy_socket(struct __sk_buff *skb, const struct cilia_tuple *t, __u16 port)
{
	struct bpf_sock_tuple tuple = {
		.ipv4 = { .saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport },
	};
	struct bpf_sock *sk;

	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state != BPF_TCP_LISTEN && sk->state != BPF_TCP_TIME_WAIT)
			return sk;
		bpf_sk_release(sk);
	}
	tuple.ipv4.daddr = bpf_htonl(PROXY_ADDRESS);
	tuple.ipv4.dport = bpf_htons(port);
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk && sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		return NULL;
	}
	return sk;
}

static __always_inline int l7_redirect(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;
	struct cilia_tuple t = {};
	struct bpf_sock *sk;
	__u16 port = cilia_mark_proxy_port(skb);
	__u8 reason, dir;
	long err;

	cilia_ctx_load(skb, &ctx);
	if (!port || (ctx.attach_point == CILIA_AP_TO_CONTAINER && !(ctx.flags & CILIA_CTX_F_REDIRECTED)))
		goto next;
	dir = ctx.attach_point == CILIA_AP_FROM_CONTAINER ? CILIA_DIR_EGRESS : CILIA_DIR_INGRESS;
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4 || t.proto != IPPROTO_TCP)
		goto next;
	sk = proxy_socket(skb, &t, port);
	if (!sk)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_REDIRECT_FAILED, ctx.attach_point, dir);
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return cilia_drop(skb, &ctx, &t, CILIA_DROP_REDIRECT_FAILED, ctx.attach_point, dir);
	/* Only the magic stays: the fwmark rule matches it, the port has served. */
	skb->mark = CILIA_MARK_TO_PROXY;
	cilia_forwarded(skb, &ctx, &t, CILIA_TRACE_TO_PROXY, ctx.attach_point, dir);
	return TC_ACT_OK;
next:
	cilia_slot_next(skb, &ctx);
	return TC_ACT_OK;
}

/* The same program in both slots: the context says which pipeline runs it. */
SEC("tc")
int cil_l7_redirect_egress(struct __sk_buff *skb)
{
	return l7_redirect(skb);
}

SEC("tc")
int cil_l7_redirect_ingress(struct __sk_buff *skb)
{
	return l7_redirect(skb);
}

char LICENSE[] SEC("license") = "GPL";
