/* SPDX-License-Identifier: Apache-2.0 */
/* Ingress limit of the bandwidth manager: the to-container shaping slot, after policy, which
 * every packet for a local endpoint passes — from the host stack (cil_to_container on the host
 * veth's egress), from another pod and from the network (their local delivery enters the
 * destination's to-container pipeline). A packet beyond the endpoint's ingress rate and burst
 * is dropped (CILIA_DROP_BANDWIDTH_LIMIT, counted and reported like any drop); the rest pass at
 * once, so no qdisc is involved.
 *
 * The drop is TC_ACT_STOLEN, not TC_ACT_SHOT: on the host veth's egress a shot packet comes back
 * to a sender on this node as NET_XMIT_DROP, and its TCP, told the packet never left, waits for a
 * timer before sending again (a 64 KiB GSO packet at a time: the limit fell to a tenth). Taken
 * quietly, the loss is found by SACK within a round trip, as a loss on the wire would be. */
#include "cilia/common.h"
#include "cilia/ctx.h"
#include "cilia/drop.h"
#include "lib/bandwidth.h"
#include "lib/monitor.h"
#include "lib/slots.h"
#include "lib/tuple.h"

SEC("tc")
int cil_bandwidth_ingress(struct __sk_buff *skb)
{
	struct cilia_bandwidth_value *bw;
	struct cilia_ctx ctx;

	cilia_ctx_load(skb, &ctx);
	bw = cilia_bw_lookup(ctx.endpoint_id, CILIA_DIR_INGRESS);
	if (bw && cilia_bw_police(skb, bw)) {
		struct cilia_tuple t = {};
		__u8 reason;

		cilia_tuple_parse4(skb, &t, &reason);
		cilia_drop(skb, &ctx, &t, CILIA_DROP_BANDWIDTH_LIMIT, ctx.attach_point, CILIA_DIR_INGRESS);
		return TC_ACT_STOLEN;
	}
	cilia_slot_next(skb, &ctx);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
