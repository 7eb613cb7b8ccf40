/* SPDX-License-Identifier: Apache-2.0 */
/* Delivery to a local endpoint without a trip through the host stack: the Ethernet header
 * is rewritten as the pod's gateway would send it (host veth MAC → pod MAC) and the packet
 * jumps straight to the pod-side interface's ingress with bpf_redirect_peer. That helper
 * only works from a tc ingress hook; callers on egress hand the packet on instead. */
#ifndef CILIA_LIB_REDIRECT_H
#define CILIA_LIB_REDIRECT_H

#include <cilia/common.h>
#include <cilia/maps.h>
#include <linux/if_ether.h>

static __always_inline int cilia_set_macs(struct __sk_buff *skb, const struct cilia_endpoint_info *ep)
{
	if (bpf_skb_store_bytes(skb, 0, ep->mac, ETH_ALEN, 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ETH_ALEN, ep->host_mac, ETH_ALEN, 0) < 0 ? -1 : 0;
}

/* Returns TC_ACT_REDIRECT on success, TC_ACT_SHOT when the MACs could not be written. */
static __always_inline int cilia_redirect_to_endpoint(struct __sk_buff *skb, const struct cilia_endpoint_info *ep)
{
	if (cilia_set_macs(skb, ep))
		return TC_ACT_SHOT;
	return bpf_redirect_peer(ep->host_ifindex, 0);
}

#endif /* CILIA_LIB_REDIRECT_H */
