/* SPDX-License-Identifier: Apache-2.0 */
/* A from-netdev pre program, as a tunnel plugin would install one: it takes UDP to port 9999
 * (drops it here, where a tunnel would decapsulate) and hands everything else back to the base
 * through cilia_pre_continue. */
#include "cilia/common.h"
#include "cilia/slots.h"
#include "lib/slots.h"
#include "lib/tuple.h"

#define PRE_TAKEN_PORT 9999

SEC("tc")
int cil_pre_take_udp(struct __sk_buff *skb)
{
	struct cilia_tuple t;
	__u8 reason;

	if (cilia_tuple_parse4(skb, &t, &reason) == CILIA_PARSE_IPV4 && t.proto == IPPROTO_UDP &&
	    t.dport == bpf_htons(PRE_TAKEN_PORT))
		return TC_ACT_SHOT;
	return cilia_pre_continue(skb, CILIA_AP_FROM_NETDEV);
}

char LICENSE[] SEC("license") = "GPL";
