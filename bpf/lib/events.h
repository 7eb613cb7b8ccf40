/* SPDX-License-Identifier: Apache-2.0 */
/* Emitting datapath events: one ring buffer, one per-CPU counter of records that found no room.
 * Define CILIA_EVENTS_RINGBUF_SIZE before including to size the ring (power of two pages), and
 * CILIA_EVENTS_PIN to pin both maps by name (the datapath objects share one ring). */
#ifndef CILIA_LIB_EVENTS_H
#define CILIA_LIB_EVENTS_H

#include "cilia/common.h"
#include "cilia/events.h"

#ifndef CILIA_EVENTS_RINGBUF_SIZE
#define CILIA_EVENTS_RINGBUF_SIZE (1 << 22)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CILIA_EVENTS_RINGBUF_SIZE);
#ifdef CILIA_EVENTS_PIN
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} cilia_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
#ifdef CILIA_EVENTS_PIN
	__uint(pinning, LIBBPF_PIN_BY_NAME);
#endif
} cilia_events_lost SEC(".maps");

static __always_inline void cilia_events_count_lost(void)
{
	__u32 key = CILIA_EVENTS_LOST_KEY;
	__u64 *lost = bpf_map_lookup_elem(&cilia_events_lost, &key);

	if (lost)
		*lost += 1;
}

/* Reserves `size` bytes for a record and fills its header; NULL (and a lost count) when full. */
static __always_inline void *cilia_event_reserve(__u32 size, __u8 type, __u8 subtype,
						 __u16 source, __u32 ifindex)
{
	struct cilia_event_hdr *hdr = bpf_ringbuf_reserve(&cilia_events, size, 0);

	if (!hdr) {
		cilia_events_count_lost();
		return NULL;
	}
	hdr->type = type;
	hdr->subtype = subtype;
	hdr->source = source;
	hdr->ifindex = ifindex;
	hdr->ts_ns = bpf_ktime_get_ns();
	return hdr;
}

static __always_inline void cilia_event_submit(void *record)
{
	bpf_ringbuf_submit(record, 0);
}

#endif /* CILIA_LIB_EVENTS_H */
