/* SPDX-License-Identifier: Apache-2.0 */
/* Identity-based L3/L4 policy (bpf/include/cilia/maps.h: cilia_policy, cilia_policy_endpoints;
 * events.h: struct cilia_policy_verdict_event).
 *
 * Per packet at most two LPM lookups: {peer identity} and {identity 0}. The writer
 * (libs/datapath/src/policy/map.ts) removes every allow prefix nested in a deny prefix of the
 * same endpoint, direction and identity, so within one identity the longest match is a deny
 * whenever any matching entry is; across the two identities a deny from either wins. That
 * makes the answer equal to "deny if any matching deny, else allow if any matching allow,
 * else drop" without iterating entries. Replies of tracked connections always pass. */
#ifndef CILIA_LIB_POLICY_H
#define CILIA_LIB_POLICY_H

#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/events.h"
#include "cilia/maps.h"
#include "cilia/slots.h"

#define CILIA_EVENTS_PIN
#include "lib/events.h"
#include "lib/conntrack.h"
#include "lib/proxy.h"
#include "lib/tuple.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CILIA_POLICY_MAX);
	__type(key, struct cilia_policy_key);
	__type(value, struct cilia_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_POLICY_ENDPOINTS_MAX);
	__type(key, __u32);
	__type(value, struct cilia_policy_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_policy_endpoints SEC(".maps");

CILIA_BTF_ANCHOR(cilia_policy_verdict_event);
CILIA_BTF_ENUM_ANCHOR(cilia_policy_mode);
CILIA_BTF_ENUM_ANCHOR(cilia_policy_match);
CILIA_BTF_ENUM_ANCHOR(cilia_policy_verdict);

/* 1 (enforcement `always`): an endpoint without a cilia_policy_endpoints entry is dropped as
 * not realized; 0: it is not enforced (its policy is written before its programs attach). */
CILIA_CONST(__u8, POLICY_DEFAULT_DENY, 0);

/* What one policy check decided. */
struct cilia_policy_result {
	__u8 reason;     /* 0 allow, else enum cilia_drop_reason */
	__u8 match_type; /* enum cilia_policy_match */
	__be16 proxy_port;
};

/* The port policy matches on: TCP/UDP/SCTP destination port, ICMP type, else 0. */
static __always_inline __be16 cilia_policy_port(struct __sk_buff *skb, const struct cilia_tuple *t)
{
	__be16 ports[2];

	if (t->proto == IPPROTO_ICMP)
		return bpf_htons(t->icmp_type);
	if (t->proto == IPPROTO_SCTP) {
		/* The tuple parser leaves SCTP untracked and portless; its ports lead the header too. */
		if (bpf_skb_load_bytes(skb, t->l4_off, ports, sizeof(ports)) < 0)
			return 0;
		return ports[1];
	}
	return t->dport;
}

static __always_inline __u8 cilia_policy_match_type(__u32 identity, const struct cilia_policy_value *v)
{
	if (identity)
		return (v->flags & CILIA_POLICY_F_WILDCARD_PORT) ? CILIA_POLICY_MATCH_L3_ONLY : CILIA_POLICY_MATCH_L3_L4;
	return (v->flags & CILIA_POLICY_F_WILDCARD_PORT) ? CILIA_POLICY_MATCH_ALL : CILIA_POLICY_MATCH_L4_ONLY;
}

/* The two lookups of an enforced direction: deny from either wins, then an allow from either
 * (the peer's own entry preferred for the reported match type), else default deny. */
static __always_inline void cilia_policy_lookup(__u16 endpoint_id, __u8 dir, __u32 peer, __u8 proto,
						__be16 dport, struct cilia_policy_result *res)
{
	struct cilia_policy_key key = {
		.prefixlen = CILIA_POLICY_PREFIX_FULL,
		.endpoint_id = bpf_htons(endpoint_id),
		.direction = dir,
		.identity = bpf_htonl(peer),
		.protocol = proto,
		.dport = dport,
	};
	struct cilia_policy_value *l3, *any;

	l3 = bpf_map_lookup_elem(&cilia_policy, &key);
	key.identity = 0;
	any = peer ? bpf_map_lookup_elem(&cilia_policy, &key) : NULL;

	if (l3 && (l3->flags & CILIA_POLICY_F_DENY)) {
		res->reason = CILIA_DROP_POLICY_DENY;
		res->match_type = cilia_policy_match_type(peer, l3);
	} else if (any && (any->flags & CILIA_POLICY_F_DENY)) {
		res->reason = CILIA_DROP_POLICY_DENY;
		res->match_type = cilia_policy_match_type(0, any);
	} else if (l3) {
		res->match_type = cilia_policy_match_type(peer, l3);
		res->proxy_port = l3->proxy_port;
	} else if (any) {
		res->match_type = cilia_policy_match_type(0, any);
		res->proxy_port = any->proxy_port;
	} else {
		res->reason = CILIA_DROP_POLICY_DENIED;
	}
}

static __always_inline void cilia_policy_emit(struct __sk_buff *skb, const struct cilia_ctx *ctx,
					      const struct cilia_tuple *t, __be16 dport, __u8 dir, __u32 peer,
					      const struct cilia_policy_result *res)
{
	struct cilia_policy_verdict_event *ev =
		cilia_event_reserve(sizeof(*ev), CILIA_EVENT_POLICY_VERDICT,
				    res->reason ? CILIA_POLICY_VERDICT_DENIED : CILIA_POLICY_VERDICT_ALLOWED,
				    ctx->attach_point, skb->ifindex);

	if (!ev)
		return;
	ev->saddr = t->saddr;
	ev->daddr = t->daddr;
	ev->sport = t->sport;
	ev->dport = dport;
	ev->proto = t->proto;
	ev->direction = dir;
	ev->match_type = res->match_type;
	ev->drop_reason = res->reason;
	ev->endpoint_id = ctx->endpoint_id;
	ev->proxy_port = res->proxy_port;
	ev->remote_identity = peer;
	cilia_event_submit(ev);
}

/* A denied first packet must not leave a connection behind: its replies would pass as such. */
static __always_inline void cilia_policy_forget_connection(const struct cilia_tuple *t)
{
	struct cilia_ct_key key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto,
	};

	bpf_map_delete_elem(&cilia_ct, &key);
}

/* The policy verdict for the packet in the pipeline of ctx->attach_point: 0 to let it pass,
 * else the drop reason. from-container checks the endpoint's egress toward the destination,
 * to-container its ingress from the source; other attach points carry no policy. */
static __always_inline __u8 cilia_policy_check(struct __sk_buff *skb, const struct cilia_ctx *ctx)
{
	struct cilia_policy_result res = {};
	struct cilia_policy_endpoint *ep;
	struct cilia_tuple t;
	__u32 id = ctx->endpoint_id;
	__u32 peer;
	__be16 dport;
	__u8 dir, mode, reason;

	if (ctx->attach_point == CILIA_AP_FROM_CONTAINER) {
		dir = CILIA_DIR_EGRESS;
		peer = ctx->dst_identity;
	} else if (ctx->attach_point == CILIA_AP_TO_CONTAINER) {
		dir = CILIA_DIR_INGRESS;
		peer = ctx->src_identity;
	} else {
		return 0;
	}
	if (ctx->ct_status == CILIA_CT_REPLY)
		return 0;

	ep = bpf_map_lookup_elem(&cilia_policy_endpoints, &id);
	if (ep)
		mode = dir == CILIA_DIR_EGRESS ? ep->egress : ep->ingress;
	else
		mode = POLICY_DEFAULT_DENY ? CILIA_POLICY_DENY_ALL : CILIA_POLICY_ALLOW_ALL;
	if (mode == CILIA_POLICY_ALLOW_ALL)
		return 0;

	/* The base parsed it already (slots only run for IPv4): anything else is a bug, drop. */
	if (cilia_tuple_parse4(skb, &t, &reason) != CILIA_PARSE_IPV4)
		return reason;
	dport = cilia_policy_port(skb, &t);
	if (mode == CILIA_POLICY_ENFORCE)
		cilia_policy_lookup(ctx->endpoint_id, dir, peer, t.proto, dport, &res);
	else
		res.reason = CILIA_DROP_POLICY_NOT_REALIZED;

	if (ctx->ct_status == CILIA_CT_NEW) {
		cilia_policy_emit(skb, ctx, &t, dport, dir, peer, &res);
		if (res.reason)
			cilia_policy_forget_connection(&t);
	}
	/* Allowed on the condition that the L7 proxy judges it: every packet of the connection
	 * (established ones too) is marked for the l7-redirect slot. */
	if (!res.reason && t.proto == IPPROTO_TCP)
		cilia_mark_to_proxy(skb, res.proxy_port);
	return res.reason;
}

#endif /* CILIA_LIB_POLICY_H */
