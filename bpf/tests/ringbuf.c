/* SPDX-License-Identifier: Apache-2.0 */
/* A producer for ring-buffer tests and benchmarks: every run emits `records_per_run` records
 * numbered by a per-CPU sequence, through bpf/lib/events.h like the real datapath. */
#include "cilia/common.h"
#include "cilia/slots.h"

#define CILIA_EVENTS_RINGBUF_SIZE (1 << 24)
#include "lib/events.h"

CILIA_CONST(__u32, records_per_run, 1);

struct test_event {
	struct cilia_event_hdr hdr;
	__u64 seq;
	__u32 cpu;
	__u32 mark;
};

CILIA_BTF_ANCHOR(cilia_event_hdr);
CILIA_BTF_ANCHOR(test_event);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

struct emit_ctx {
	__u32 ifindex;
	__u32 mark;
};

static long emit_one(__u32 index, void *data)
{
	struct emit_ctx *ctx = data;
	__u32 key = 0;
	__u64 *next = bpf_map_lookup_elem(&seq, &key);
	struct test_event *ev;

	if (!next)
		return 1;
	ev = cilia_event_reserve(sizeof(*ev), CILIA_EVENT_DEBUG, 7, CILIA_AP_FROM_NETDEV, ctx->ifindex);
	*next += 1;
	if (!ev)
		return 0;
	ev->seq = *next;
	ev->cpu = bpf_get_smp_processor_id();
	ev->mark = ctx->mark;
	cilia_event_submit(ev);
	return 0;
}

SEC("tc")
int cls_emit(struct __sk_buff *skb)
{
	struct emit_ctx ctx = { .ifindex = skb->ifindex, .mark = skb->mark };

	bpf_loop(records_per_run, emit_one, &ctx, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
