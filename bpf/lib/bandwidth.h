/* SPDX-License-Identifier: Apache-2.0 */
/* Per-endpoint rate limits on one clock (cilia_bandwidth, bpf/include/cilia/maps.h): EDT for
 * egress, a policer for ingress.
 *
 * Each limit keeps the departure time of the last packet it let through (t_last). A packet of
 * `len` bytes departs at t_last + len / rate, or at once when that is already past — Cilium's
 * EDT (bpf/lib/edt.h there), where a lone packet after a pause is not delayed. A departure more
 * than horizon_ns from now is refused, and t_last stays where it was:
 *   - egress (cilia_bw_pace) writes the departure time into skb->tstamp; the device's fq qdisc
 *     holds the packet until then, and the horizon bounds that queue;
 *   - ingress (cilia_bw_police) lets a packet through at once while its departure lies within
 *     the horizon — the burst at the rate — so the limit holds on average with no qdisc, and the
 *     packets beyond it are dropped.
 * The clock is advanced without a lock, as in Cilium: two CPUs sending for one endpoint at the
 * same moment may both take the same slot, which the next packets make up for. */
#ifndef CILIA_LIB_BANDWIDTH_H
#define CILIA_LIB_BANDWIDTH_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include "cilia/maps.h"

#define CILIA_NSEC_PER_SEC 1000000000ULL

/* One load and one store of the clock each, not merged or torn by the compiler. */
#define CILIA_BW_READ(x) (*(volatile __typeof__(x) *)&(x))
#define CILIA_BW_WRITE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_BANDWIDTH_MAX);
	__type(key, struct cilia_bandwidth_key);
	__type(value, struct cilia_bandwidth_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_bandwidth SEC(".maps");

/* The endpoint's limit in `direction` (enum cilia_direction), or NULL when it has none. */
static __always_inline struct cilia_bandwidth_value *cilia_bw_lookup(__u32 endpoint_id, __u8 direction)
{
	struct cilia_bandwidth_key key = { .endpoint_id = endpoint_id, .direction = direction };
	struct cilia_bandwidth_value *bw = bpf_map_lookup_elem(&cilia_bandwidth, &key);

	return bw && bw->rate ? bw : NULL;
}

/* Bytes the packet occupies on the wire: every segment's headers of a GSO packet counted
 * (qdisc_pkt_len), as the NIC will send it. */
static __always_inline __u32 cilia_bw_wire_len(const struct __sk_buff *skb)
{
	return skb->wire_len ? skb->wire_len : skb->len;
}

/* The departure time of a `len`-byte packet that may leave no earlier than `earliest`, and the
 * clock advanced to it; 0 (and the drop counted) when it lies beyond the horizon from `now`. */
static __always_inline __u64 cilia_bw_depart(struct cilia_bandwidth_value *bw, __u64 now, __u64 earliest, __u32 len)
{
	__u64 rate = bw->rate;
	__u64 next;

	if (!rate)
		return earliest;
	next = CILIA_BW_READ(bw->t_last) + (__u64)len * CILIA_NSEC_PER_SEC / rate;
	if (next <= earliest) {
		CILIA_BW_WRITE(bw->t_last, earliest);
		return earliest;
	}
	if (next - now > bw->horizon_ns) {
		__sync_fetch_and_add(&bw->drops, 1);
		return 0;
	}
	CILIA_BW_WRITE(bw->t_last, next);
	return next;
}

/* Egress EDT: sets skb->tstamp to the packet's departure time (a later one the sender set —
 * its own TCP pacing — is kept as the earliest). Returns 0, or CILIA_DROP_EDT_HORIZON. */
static __always_inline __u8 cilia_bw_pace(struct __sk_buff *skb, struct cilia_bandwidth_value *bw)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 t = skb->tstamp > now ? skb->tstamp : now;

	t = cilia_bw_depart(bw, now, t, cilia_bw_wire_len(skb));
	if (!t)
		return CILIA_DROP_EDT_HORIZON;
	if (t > now && t > skb->tstamp) /* else it leaves at once, as it came */
		skb->tstamp = t;
	return 0;
}

/* Ingress policer: returns 0 (the packet passes now), or CILIA_DROP_BANDWIDTH_LIMIT. */
static __always_inline __u8 cilia_bw_police(const struct __sk_buff *skb, struct cilia_bandwidth_value *bw)
{
	__u64 now = bpf_ktime_get_ns();

	return cilia_bw_depart(bw, now, now, cilia_bw_wire_len(skb)) ? 0 : CILIA_DROP_BANDWIDTH_LIMIT;
}

#endif /* CILIA_LIB_BANDWIDTH_H */
