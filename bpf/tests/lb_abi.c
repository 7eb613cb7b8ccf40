/* SPDX-License-Identifier: Apache-2.0 */
/* The load balancer's headers compiled on their own, so libs/datapath's layout test can compare
 * the TS codecs of its maps and the numbers of its enums with their BTF (the programs that use
 * them ship in @cilia/plugin-kube-proxy-replacement). */
#include "cilia/common.h"
#include "lib/icmp.h"
#include "lib/lb.h"

SEC("tc")
int lb_abi(struct __sk_buff *skb)
{
	struct cilia_lb4_service *svc = cilia_lb4_lookup(0, 0, IPPROTO_TCP);

	return svc ? svc->count : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
