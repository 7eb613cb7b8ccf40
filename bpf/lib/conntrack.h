/* SPDX-License-Identifier: Apache-2.0 */
/* Connection tracking for IPv4 TCP, UDP and ICMP echo (bpf/include/cilia/maps.h, cilia_ct).
 *
 * One entry per connection, keyed by its original direction's tuple; a packet that matches
 * the reversed tuple is a reply. Entries carry an absolute deadline: an expired entry counts
 * as absent (and is replaced by the next connection on that tuple); user space deletes
 * expired entries, and the LRU map evicts the least recently used ones when it is full. */
#ifndef CILIA_LIB_CONNTRACK_H
#define CILIA_LIB_CONNTRACK_H

#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/maps.h"
#include "lib/tuple.h"

#define CILIA_NS_PER_SEC 1000000000ULL
/* Lifetimes after the last packet, by state (as Cilium's defaults). */
#define CILIA_CT_LIFETIME_TCP_SYN (60 * CILIA_NS_PER_SEC)
#define CILIA_CT_LIFETIME_TCP (21600 * CILIA_NS_PER_SEC)
#define CILIA_CT_LIFETIME_TCP_CLOSE (10 * CILIA_NS_PER_SEC)
#define CILIA_CT_LIFETIME_UDP (60 * CILIA_NS_PER_SEC)
#define CILIA_CT_LIFETIME_ICMP (30 * CILIA_NS_PER_SEC)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_CT_MAX);
	__type(key, struct cilia_ct_key);
	__type(value, struct cilia_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_ct SEC(".maps");

CILIA_BTF_ENUM_ANCHOR(cilia_ct_state);

static __always_inline __u64 cilia_ct_lifetime(__u8 proto, __u8 state)
{
	if (proto == IPPROTO_ICMP)
		return CILIA_CT_LIFETIME_ICMP;
	if (proto != IPPROTO_TCP)
		return CILIA_CT_LIFETIME_UDP;
	switch (state) {
	case CILIA_CT_STATE_SYN_SENT:
	case CILIA_CT_STATE_SYN_RECV:
		return CILIA_CT_LIFETIME_TCP_SYN;
	case CILIA_CT_STATE_CLOSING:
	case CILIA_CT_STATE_CLOSED:
		return CILIA_CT_LIFETIME_TCP_CLOSE;
	default:
		return CILIA_CT_LIFETIME_TCP;
	}
}

/* The state a connection starts in, from its first packet. */
static __always_inline __u8 cilia_ct_initial_state(const struct cilia_tuple *t)
{
	if (t->proto != IPPROTO_TCP)
		return CILIA_CT_STATE_UNREPLIED;
	if (t->tcp_flags & CILIA_TCP_RST)
		return CILIA_CT_STATE_CLOSED;
	if ((t->tcp_flags & (CILIA_TCP_SYN | CILIA_TCP_ACK)) == CILIA_TCP_SYN)
		return CILIA_CT_STATE_SYN_SENT;
	/* Mid-stream (e.g. the entry was evicted): take it as established. */
	return CILIA_CT_STATE_ESTABLISHED;
}

/* Moves a TCP connection's state for one packet; `reply` says which direction sent it. */
static __always_inline void cilia_ct_tcp_step(struct cilia_ct_value *v, __u8 tcp_flags, int reply)
{
	__u8 state = v->state;

	if (tcp_flags & CILIA_TCP_RST) {
		v->state = CILIA_CT_STATE_CLOSED;
		return;
	}
	if (!reply && (tcp_flags & (CILIA_TCP_SYN | CILIA_TCP_ACK)) == CILIA_TCP_SYN) {
		/* A new SYN on a finished connection's tuple: the port is being reused. */
		if (state == CILIA_CT_STATE_CLOSED || state == CILIA_CT_STATE_CLOSING) {
			v->state = CILIA_CT_STATE_SYN_SENT;
			v->flags = 0;
		}
		return;
	}
	if (state == CILIA_CT_STATE_SYN_SENT && reply &&
	    (tcp_flags & (CILIA_TCP_SYN | CILIA_TCP_ACK)) == (CILIA_TCP_SYN | CILIA_TCP_ACK)) {
		v->state = CILIA_CT_STATE_SYN_RECV;
		return;
	}
	if (state == CILIA_CT_STATE_SYN_RECV && !reply && (tcp_flags & CILIA_TCP_ACK))
		v->state = CILIA_CT_STATE_ESTABLISHED;
	if (tcp_flags & CILIA_TCP_FIN) {
		v->flags |= reply ? CILIA_CT_F_FIN_REPLY : CILIA_CT_F_FIN_ORIG;
		if ((v->flags & (CILIA_CT_F_FIN_ORIG | CILIA_CT_F_FIN_REPLY)) ==
		    (CILIA_CT_F_FIN_ORIG | CILIA_CT_F_FIN_REPLY))
			v->state = CILIA_CT_STATE_CLOSING;
		else if (v->state != CILIA_CT_STATE_CLOSED)
			v->state = CILIA_CT_STATE_FIN_WAIT;
	}
}

static __always_inline void cilia_ct_account(struct cilia_ct_value *v, int reply, __u32 len, __u64 now,
					     __u8 proto)
{
	if (reply) {
		__sync_fetch_and_add(&v->packets_reply, 1);
		__sync_fetch_and_add(&v->bytes_reply, len);
	} else {
		__sync_fetch_and_add(&v->packets_orig, 1);
		__sync_fetch_and_add(&v->bytes_orig, len);
	}
	{
		__u64 expires = now + cilia_ct_lifetime(proto, v->state);

		/* Extending by less than a second is not worth a write to a line other CPUs read;
		 * shortening (closing states) always is. */
		if (expires > v->expires_ns + CILIA_NS_PER_SEC || expires < v->expires_ns)
			v->expires_ns = expires;
	}
}

/* What conntrack knows of a packet, without tracking it (for a second look at a packet that
 * was tracked earlier on its way, e.g. leaving the node after from-container). */
static __always_inline __u8 cilia_ct_status4(const struct cilia_tuple *t)
{
	struct cilia_ct_key key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto,
	};
	struct cilia_ct_key rkey = {
		.saddr = t->daddr, .daddr = t->saddr, .sport = t->dport, .dport = t->sport, .proto = t->proto,
	};

	if (!t->tracked)
		return CILIA_CT_UNTRACKED;
	if (bpf_map_lookup_elem(&cilia_ct, &key))
		return CILIA_CT_ESTABLISHED;
	return bpf_map_lookup_elem(&cilia_ct, &rkey) ? CILIA_CT_REPLY : CILIA_CT_UNTRACKED;
}

/* Tracks one packet. Sets *status (enum cilia_ct_status); returns 0 or a drop reason. */
static __always_inline int cilia_ct_process4(const struct cilia_tuple *t, __u32 len, __u32 src_identity,
					     __u8 *status)
{
	struct cilia_ct_key key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport, .proto = t->proto,
	};
	struct cilia_ct_value *v;
	__u64 now;

	if (!t->tracked) {
		*status = CILIA_CT_UNTRACKED;
		return 0;
	}
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&cilia_ct, &key);
	if (v && v->expires_ns > now) {
		if (t->proto == IPPROTO_TCP)
			cilia_ct_tcp_step(v, t->tcp_flags, 0);
		cilia_ct_account(v, 0, len, now, t->proto);
		*status = CILIA_CT_ESTABLISHED;
		return 0;
	}
	{
		struct cilia_ct_key rkey = {
			.saddr = t->daddr, .daddr = t->saddr, .sport = t->dport, .dport = t->sport, .proto = t->proto,
		};
		struct cilia_ct_value *rv = bpf_map_lookup_elem(&cilia_ct, &rkey);

		if (rv && rv->expires_ns > now) {
			if (t->proto == IPPROTO_TCP)
				cilia_ct_tcp_step(rv, t->tcp_flags, 1);
			else
				rv->state = CILIA_CT_STATE_ESTABLISHED;
			cilia_ct_account(rv, 1, len, now, t->proto);
			*status = CILIA_CT_REPLY;
			return 0;
		}
	}
	{
		struct cilia_ct_value nv = {
			.packets_orig = 1,
			.bytes_orig = len,
			.src_identity = src_identity,
			.state = cilia_ct_initial_state(t),
		};

		nv.expires_ns = now + cilia_ct_lifetime(t->proto, nv.state);
		if (bpf_map_update_elem(&cilia_ct, &key, &nv, BPF_ANY) < 0)
			return CILIA_DROP_CT_CREATE_FAILED;
	}
	*status = CILIA_CT_NEW;
	return 0;
}

#endif /* CILIA_LIB_CONNTRACK_H */
