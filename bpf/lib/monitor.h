/* SPDX-License-Identifier: Apache-2.0 */
/* Drop and trace events into the ring buffer, and per-reason per-CPU packet/byte counters
 * (reason 0 counts forwarded packets). */
#ifndef CILIA_LIB_MONITOR_H
#define CILIA_LIB_MONITOR_H

#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/maps.h"

#define CILIA_EVENTS_PIN
#include "lib/events.h"
#include "lib/tuple.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CILIA_METRICS_MAX);
	__type(key, struct cilia_metrics_key);
	__type(value, struct cilia_metrics_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_metrics SEC(".maps");

/* Records and codes user space decodes: keep them in BTF for the TS codec check. */
CILIA_BTF_ANCHOR(cilia_packet_event);
CILIA_BTF_ENUM_ANCHOR(cilia_event_type);
CILIA_BTF_ENUM_ANCHOR(cilia_drop_reason);
CILIA_BTF_ENUM_ANCHOR(cilia_trace_point);
CILIA_BTF_ENUM_ANCHOR(cilia_direction);
CILIA_BTF_ENUM_ANCHOR(cilia_monitor_aggregation);

/* enum cilia_monitor_aggregation: which forwarded packets are traced. Per-packet events would
 * cost the ring buffer more than the forwarding itself, so the default reports a connection's
 * first packet and its TCP flag changes (SYN, FIN, RST) only: the record rate stays bounded by
 * the connection rate, not the packet rate. */
CILIA_CONST(__u8, MONITOR_AGGREGATION, CILIA_MONITOR_AGG_MEDIUM);

#define CILIA_TRACE_TCP_FLAGS 0x07 /* FIN, SYN, RST */

/* Whether a forwarded packet is traced at `point`, by MONITOR_AGGREGATION. */
static __always_inline int cilia_trace_wanted(const struct cilia_ctx *ctx, const struct cilia_tuple *t, __u8 point)
{
	if (ctx->ct_status == CILIA_CT_NEW)
		return 1;
	if (MONITOR_AGGREGATION >= CILIA_MONITOR_AGG_MAXIMUM)
		return 0;
	if (MONITOR_AGGREGATION >= CILIA_MONITOR_AGG_MEDIUM)
		return t && t->proto == IPPROTO_TCP && (t->tcp_flags & CILIA_TRACE_TCP_FLAGS);
	if (MONITOR_AGGREGATION >= CILIA_MONITOR_AGG_LOWEST)
		return point != CILIA_TRACE_FROM_NETWORK;
	return 1;
}

static __always_inline void cilia_metrics_count(__u8 reason, __u8 dir, __u32 len)
{
	struct cilia_metrics_key key = { .reason = reason, .dir = dir };
	struct cilia_metrics_value *v = bpf_map_lookup_elem(&cilia_metrics, &key);

	if (v) {
		v->packets += 1;
		v->bytes += len;
		return;
	}
	{
		struct cilia_metrics_value first = { .packets = 1, .bytes = len };

		/* Another CPU may have created it meanwhile: then this one packet goes uncounted. */
		bpf_map_update_elem(&cilia_metrics, &key, &first, BPF_NOEXIST);
	}
}

static __always_inline void cilia_emit(struct __sk_buff *skb, const struct cilia_ctx *ctx,
				       const struct cilia_tuple *t, __u8 type, __u8 subtype, __u16 ap)
{
	struct cilia_packet_event *ev = cilia_event_reserve(sizeof(*ev), type, subtype, ap, skb->ifindex);

	if (!ev)
		return;
	ev->saddr = t ? t->saddr : 0;
	ev->daddr = t ? t->daddr : 0;
	ev->sport = t ? t->sport : 0;
	ev->dport = t ? t->dport : 0;
	ev->proto = t ? t->proto : 0;
	ev->ct_status = ctx->ct_status;
	ev->endpoint_id = ctx->endpoint_id;
	ev->src_identity = ctx->src_identity;
	ev->dst_identity = ctx->dst_identity;
	ev->len = skb->len;
	ev->target_ifindex = ctx->target_ifindex;
	ev->tcp_flags = t ? t->tcp_flags : 0;
	ev->icmp_type = t ? t->icmp_type : 0;
	ev->pad = 0;
	cilia_event_submit(ev);
}

/* Counts and reports a drop; returns TC_ACT_SHOT for the caller to return. */
static __always_inline int cilia_drop(struct __sk_buff *skb, const struct cilia_ctx *ctx,
				      const struct cilia_tuple *t, __u8 reason, __u16 ap, __u8 dir)
{
	cilia_metrics_count(reason, dir, skb->len);
	cilia_emit(skb, ctx, t, CILIA_EVENT_DROP, reason, ap);
	return TC_ACT_SHOT;
}

/* Traces a packet as MONITOR_AGGREGATION says (a connection's first packet at the least). */
static __always_inline void cilia_trace(struct __sk_buff *skb, const struct cilia_ctx *ctx,
					const struct cilia_tuple *t, __u8 point, __u16 ap)
{
	if (cilia_trace_wanted(ctx, t, point))
		cilia_emit(skb, ctx, t, CILIA_EVENT_TRACE, point, ap);
}

/* Counts a forwarded packet and traces it (see cilia_trace). */
static __always_inline void cilia_forwarded(struct __sk_buff *skb, const struct cilia_ctx *ctx,
					    const struct cilia_tuple *t, __u8 point, __u16 ap, __u8 dir)
{
	cilia_metrics_count(CILIA_REASON_FORWARDED, dir, skb->len);
	cilia_trace(skb, ctx, t, point, ap);
}

#endif /* CILIA_LIB_MONITOR_H */
