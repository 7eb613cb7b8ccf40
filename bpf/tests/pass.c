/* SPDX-License-Identifier: Apache-2.0 */
/* The cheapest programs there are: the floor of test-run and attach costs. */
#include "cilia/common.h"

SEC("tc")
int cls_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Same behaviour, another program: lets attach tests tell which one is installed. */
SEC("xdp")
int xdp_pass2(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
