/* SPDX-License-Identifier: Apache-2.0 */
/* Composition by tail calls: a base program jumps to the policy slot, and falls through to
 * its default verdict while the slot is empty. */
#include "cilia/common.h"
#include "cilia/slots.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, CILIA_SLOT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} slots SEC(".maps");

SEC("tc")
int cls_base(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &slots, CILIA_SLOT_POLICY);
	return TC_ACT_OK;
}

SEC("tc")
int cls_policy_deny(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

SEC("tc")
int cls_policy_redirect(struct __sk_buff *skb)
{
	return TC_ACT_REDIRECT;
}

char LICENSE[] SEC("license") = "GPL";
