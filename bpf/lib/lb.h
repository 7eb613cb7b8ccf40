/* SPDX-License-Identifier: Apache-2.0 */
/* The load balancer (bpf/include/cilia/lb.h): frontends, backends, Maglev tables, session
 * affinity, and the per-packet translation of a connection to a frontend — its destination
 * rewritten to a backend, the backend remembered for the rest of the connection, its conntrack
 * entry carrying the frontend's id — and of the replies back to the frontend.
 *
 *   cilia_lb4_lookup        the frontend (slot 0) of a destination
 *   cilia_lb4_pick          a backend for a new connection: its affinity, else Maglev or random
 *   cilia_lb4_xlate         a packet to a frontend: DNAT to the connection's backend, tracked
 *   cilia_lb4_rev_nat       a reply of a translated connection: its source back to the frontend
 *
 * Shared by the per-packet (tc) and the socket (cgroup) programs of the kube-proxy
 * replacement plugin, which fill the maps' only writer, @cilia/lb. */
#ifndef CILIA_LIB_LB_H
#define CILIA_LIB_LB_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include "cilia/lb.h"
#include "cilia/maps.h"
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/redirect.h"
#include "lib/tuple.h"

#ifndef BPF_F_NO_PREALLOC
#define BPF_F_NO_PREALLOC (1U << 0)
#endif
#ifndef BPF_F_INNER_MAP
#define BPF_F_INNER_MAP (1U << 12)
#endif

/* Slots of every frontend's Maglev table (a prime; @cilia/lb builds the tables this size). */
CILIA_CONST(__u32, LB_MAGLEV_TABLE_SIZE, 16381);
/* Seed of the flow hash that indexes the Maglev table: the same on every node. */
CILIA_CONST(__u32, LB_MAGLEV_SEED, 0);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_LB4_SERVICES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cilia_lb4_key);
	__type(value, struct cilia_lb4_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_LB4_BACKENDS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct cilia_lb4_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_LB4_REVERSE_NAT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u16);
	__type(value, struct cilia_lb4_reverse_nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_reverse_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_LB4_FLOWS_MAX);
	__type(key, struct cilia_ct_key);
	__type(value, struct cilia_lb4_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_LB_AFFINITY_MAX);
	__type(key, struct cilia_lb_affinity_key);
	__type(value, struct cilia_lb_affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_LB_AFFINITY_MATCH_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cilia_lb_affinity_match);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb_affinity_match SEC(".maps");

struct cilia_lb_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* any size: BPF_F_INNER_MAP */
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, CILIA_LB4_MAGLEV_MAX);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct cilia_lb_maglev_inner);
} cilia_lb4_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_LB4_SK_REVERSE_MAX);
	__type(key, struct cilia_lb4_sk_key);
	__type(value, struct cilia_lb4_sk_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_lb4_sk_reverse SEC(".maps");

CILIA_BTF_ENUM_ANCHOR(cilia_lb_frontend_type);
CILIA_BTF_ENUM_ANCHOR(cilia_lb_algorithm);
CILIA_BTF_ENUM_ANCHOR(cilia_lb_backend_state);

/* The frontend at `address:port/proto`, or NULL. */
static __always_inline struct cilia_lb4_service *cilia_lb4_lookup(__be32 address, __be16 port, __u8 proto)
{
	struct cilia_lb4_key key = { .address = address, .dport = port, .proto = proto };

	return bpf_map_lookup_elem(&cilia_lb4_services, &key);
}

static __always_inline __u32 cilia_lb_rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 cilia_lb_hash_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = cilia_lb_rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = cilia_lb_rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

/* MurmurHash3-style hash of a connection's 5-tuple (as the client sent it), seeded with
 * LB_MAGLEV_SEED: every node computes the same, so a flow meets the same Maglev slot wherever it
 * enters. */
static __always_inline __u32 cilia_lb_hash4(const struct cilia_tuple *t)
{
	__u32 h = LB_MAGLEV_SEED;

	h = cilia_lb_hash_word(h, t->saddr);
	h = cilia_lb_hash_word(h, t->daddr);
	h = cilia_lb_hash_word(h, ((__u32)t->sport << 16) | t->dport);
	h = cilia_lb_hash_word(h, t->proto);
	h ^= 16;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* A backend id for a new connection to `svc` (whose slot-0 key is `key`): the Maglev table's
 * slot of `hash`, or a random slot among 1..count (also when the frontend's Maglev table is not
 * written yet). 0 when there is none. */
static __always_inline __u32 cilia_lb4_select(const struct cilia_lb4_key *key, const struct cilia_lb4_service *svc, __u32 hash)
{
	struct cilia_lb4_key slot = *key;
	struct cilia_lb4_service *s;

	if (!svc->count)
		return 0;
	if (svc->algorithm == CILIA_LB_MAGLEV && LB_MAGLEV_TABLE_SIZE) {
		__u32 id = svc->rev_nat_index;
		void *table = bpf_map_lookup_elem(&cilia_lb4_maglev, &id);

		if (table) {
			__u32 index = hash % LB_MAGLEV_TABLE_SIZE;
			__u32 *backend = bpf_map_lookup_elem(table, &index);

			if (backend && *backend)
				return *backend;
		}
	}
	slot.backend_slot = (__u16)(bpf_get_prandom_u32() % svc->count) + 1;
	s = bpf_map_lookup_elem(&cilia_lb4_services, &slot);
	return s ? s->backend_id : 0;
}

/* The backend `client` had last for `svc`, while its affinity lasts and the backend is still
 * one of the frontend's; else 0. */
static __always_inline __u32 cilia_lb_affinity_get(const struct cilia_lb4_service *svc, __u64 client, __u8 netns)
{
	struct cilia_lb_affinity_key key = { .client = client, .rev_nat_index = svc->rev_nat_index, .netns = netns };
	struct cilia_lb_affinity_value *v = bpf_map_lookup_elem(&cilia_lb4_affinity, &key);
	struct cilia_lb_affinity_match match = { .rev_nat_index = svc->rev_nat_index };

	if (!v || v->last_used_ns + (__u64)svc->affinity_timeout * CILIA_NS_PER_SEC <= bpf_ktime_get_ns())
		return 0;
	match.backend_id = v->backend_id;
	return bpf_map_lookup_elem(&cilia_lb_affinity_match, &match) ? v->backend_id : 0;
}

static __always_inline void cilia_lb_affinity_set(const struct cilia_lb4_service *svc, __u64 client, __u8 netns, __u32 backend_id)
{
	struct cilia_lb_affinity_key key = { .client = client, .rev_nat_index = svc->rev_nat_index, .netns = netns };
	struct cilia_lb_affinity_value v = { .last_used_ns = bpf_ktime_get_ns(), .backend_id = backend_id };

	bpf_map_update_elem(&cilia_lb4_affinity, &key, &v, BPF_ANY);
}

/* The backend for a new connection from `client` (an address, or a netns cookie with `netns`)
 * to `svc`: its affinity's while that lasts, else cilia_lb4_select's. NULL when there is none;
 * *id is its id. */
static __always_inline struct cilia_lb4_backend *cilia_lb4_pick(const struct cilia_lb4_key *key, const struct cilia_lb4_service *svc,
								__u32 hash, __u64 client, __u8 netns, __u32 *id)
{
	struct cilia_lb4_backend *backend;
	__u32 backend_id = 0;

	if (svc->affinity_timeout)
		backend_id = cilia_lb_affinity_get(svc, client, netns);
	if (!backend_id)
		backend_id = cilia_lb4_select(key, svc, hash);
	if (!backend_id)
		return NULL;
	backend = bpf_map_lookup_elem(&cilia_lb4_backends, &backend_id);
	if (!backend)
		return NULL;
	if (svc->affinity_timeout)
		cilia_lb_affinity_set(svc, client, netns, backend_id);
	*id = backend_id;
	return backend;
}

/* What cilia_lb4_xlate did. */
enum cilia_lb_xlate {
	CILIA_LB_NOT_SERVICE = 0, /* the destination is no frontend */
	CILIA_LB_TRANSLATED = 1,  /* DNAT done; the tuple describes the packet as rewritten */
	CILIA_LB_NO_BACKEND = 2,  /* a frontend without a backend to take the connection */
};

/* A packet `t` describes, to a frontend (TCP or UDP): rewritten to the connection's backend —
 * the one cilia_lb4_flows remembers while it exists, else a new pick — and the translated
 * connection tracked with the frontend's id in its conntrack entry (for the replies). Returns an
 * enum cilia_lb_xlate, or -reason; *svc_out is the frontend, *status the translated tuple's
 * conntrack status. */
static __always_inline int cilia_lb4_xlate(struct __sk_buff *skb, struct cilia_tuple *t, __u32 src_identity,
					   struct cilia_lb4_service **svc_out, __u8 *status)
{
	struct cilia_lb4_key key = { .address = t->daddr, .dport = t->dport, .proto = t->proto };
	struct cilia_ct_key flow_key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto,
	};
	struct cilia_lb4_backend *backend = NULL;
	struct cilia_lb4_service *svc;
	struct cilia_lb4_flow *flow;
	struct cilia_ct_value *ct;
	__u32 backend_id = 0;
	int r;

	if (!t->tracked || (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP))
		return CILIA_LB_NOT_SERVICE;
	svc = bpf_map_lookup_elem(&cilia_lb4_services, &key);
	if (!svc)
		return CILIA_LB_NOT_SERVICE;
	*svc_out = svc;
	flow = bpf_map_lookup_elem(&cilia_lb4_flows, &flow_key);
	if (flow && flow->rev_nat_index == svc->rev_nat_index) {
		backend_id = flow->backend_id;
		backend = bpf_map_lookup_elem(&cilia_lb4_backends, &backend_id);
	}
	if (!backend) {
		/* A later fragment cannot start a connection: its first would have. */
		if (t->frag == CILIA_TUPLE_LATER_FRAGMENT)
			return -CILIA_DROP_FRAGMENT;
		backend = cilia_lb4_pick(&key, svc, cilia_lb_hash4(t), t->saddr, 0, &backend_id);
		if (!backend)
			return CILIA_LB_NO_BACKEND;
		{
			struct cilia_lb4_flow nf = {
				.expires_ns = bpf_ktime_get_ns() + CILIA_CT_LIFETIME_TCP_SYN,
				.backend_id = backend_id,
				.rev_nat_index = svc->rev_nat_index,
			};

			if (bpf_map_update_elem(&cilia_lb4_flows, &flow_key, &nf, BPF_ANY) < 0)
				return -CILIA_DROP_CT_CREATE_FAILED;
		}
		flow = bpf_map_lookup_elem(&cilia_lb4_flows, &flow_key);
	}
	if (cilia_nat_rewrite4(skb, t, 0, backend->address, backend->port))
		return -CILIA_DROP_REWRITE_FAILED;
	t->daddr = backend->address;
	t->dport = backend->port;
	r = cilia_ct_process4(t, skb->len, src_identity, status);
	if (r)
		return -r;
	{
		struct cilia_ct_key ck = {
			.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto,
		};

		ct = bpf_map_lookup_elem(&cilia_ct, &ck);
	}
	if (ct) {
		if (ct->rev_nat_index != svc->rev_nat_index)
			ct->rev_nat_index = svc->rev_nat_index;
		/* The flow lives as long as its translated connection. */
		if (flow && flow->expires_ns != ct->expires_ns)
			flow->expires_ns = ct->expires_ns;
	}
	return CILIA_LB_TRANSLATED;
}

/* A reply of a connection this node translated (the conntrack entry of its reversed tuple
 * carries a frontend id): its source rewritten back to the frontend. With `track`, the reply is
 * also accounted to that entry (where the base program did not track it). Returns 1 when
 * rewritten (the tuple then describes the packet as rewritten), 0 when it is no such reply, or
 * -reason. */
static __always_inline int cilia_lb4_rev_nat(struct __sk_buff *skb, struct cilia_tuple *t, int track, __u32 src_identity)
{
	struct cilia_ct_key rkey = {
		.saddr = t->daddr, .daddr = t->saddr, .sport = t->dport, .dport = t->sport, .proto = t->proto,
	};
	struct cilia_lb4_reverse_nat *frontend;
	struct cilia_ct_value *ct;
	__u16 index;
	__u8 status;

	if (!t->tracked || (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP))
		return 0;
	ct = bpf_map_lookup_elem(&cilia_ct, &rkey);
	if (!ct || !ct->rev_nat_index)
		return 0;
	index = ct->rev_nat_index;
	frontend = bpf_map_lookup_elem(&cilia_lb4_reverse_nat, &index);
	if (!frontend)
		return 0;
	if (track && cilia_ct_process4(t, skb->len, src_identity, &status))
		return -CILIA_DROP_CT_CREATE_FAILED;
	if (cilia_nat_rewrite4(skb, t, 1, frontend->address, frontend->port))
		return -CILIA_DROP_REWRITE_FAILED;
	t->saddr = frontend->address;
	t->sport = frontend->port;
	return 1;
}

#endif /* CILIA_LIB_LB_H */
