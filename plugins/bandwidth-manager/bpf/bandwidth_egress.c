/* SPDX-License-Identifier: Apache-2.0 */
/* Egress EDT of the bandwidth manager: the to-netdev shaping slot, which sees every packet a
 * local endpoint sends out of the node's device (cil_to_netdev, bpf/host.c, runs the slots for
 * sources that are endpoints; ctx.endpoint_id is the sender). A packet of an endpoint with an
 * egress limit gets its departure time in skb->tstamp, for the device's fq qdisc to hold it
 * until then; one beyond the horizon is dropped (CILIA_DROP_EDT_HORIZON, counted by the base). */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "lib/bandwidth.h"
#include "lib/slots.h"

SEC("tc")
int cil_bandwidth_egress(struct __sk_buff *skb)
{
	struct cilia_bandwidth_value *bw;
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	bw = cilia_bw_lookup(ctx.endpoint_id, CILIA_DIR_EGRESS);
	if (bw)
		ctx.drop_reason = cilia_bw_pace(skb, bw);
	cilia_slot_next(skb, &ctx);
	return ctx.drop_reason ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
