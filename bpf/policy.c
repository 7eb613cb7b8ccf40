/* SPDX-License-Identifier: Apache-2.0 */
/* The policy slot program (bpf/lib/policy.h), installed by the loader into the policy slot of
 * from-container (the endpoint's egress) and to-container (its ingress). One object serves
 * every endpoint: what differs per endpoint is in cilia_policy and cilia_policy_endpoints. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/slots.h"
#include "lib/policy.h"
#include "lib/slots.h"

SEC("tc")
int cil_policy(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	ctx.drop_reason = cilia_policy_check(skb, &ctx);
	/* The base counts and reports a drop, or carries on with the next slot. */
	cilia_slot_next(skb, &ctx);
	/* No resume program: the pipeline cannot go on, and an unchecked packet must not pass. */
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
