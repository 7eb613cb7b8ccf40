/* SPDX-License-Identifier: Apache-2.0 */
/* A second object filling datapath slots, as a plugin would: it shares the pinned
 * cilia_tc_slots (and the other maps) with the base objects by opening with their pin root. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "cilia/slots.h"
#include "lib/slots.h"

/* How often each program ran, so tests see the slot was entered. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} filler_calls SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&filler_calls, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Policy slot (of any attach point): deny, and let the base count and report the drop. */
SEC("tc")
int cil_policy_deny(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	count(0);
	cilia_ctx_load(skb, &ctx);
	ctx.drop_reason = CILIA_DROP_POLICY_DENIED;
	cilia_slot_next(skb, &ctx);
	return TC_ACT_SHOT;
}

/* Forward slot of from-container: hand every packet to the host stack, whatever the base
 * would have done, and say so in the context's flags for the test to read back. */
SEC("tc")
int cil_forward_to_stack(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	count(1);
	cilia_ctx_load(skb, &ctx);
	ctx.target_ifindex = 0;
	cilia_ctx_store(skb, &ctx);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
