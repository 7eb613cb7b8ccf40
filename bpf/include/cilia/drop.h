/* SPDX-License-Identifier: Apache-2.0 */
/* Why a packet was dropped (the `subtype` of a drop event and the `reason` of a metrics key),
 * and the trace points of trace events. ABI: append only, never renumber. */
#ifndef CILIA_DROP_H
#define CILIA_DROP_H

enum cilia_drop_reason {
	/* Not a drop: metrics count forwarded packets under reason 0. */
	CILIA_REASON_FORWARDED = 0,
	/* Too short for its headers, bad IHL, truncated L4 header. */
	CILIA_DROP_INVALID_PACKET = 1,
	/* An L3 protocol the datapath does not handle yet (e.g. IPv6). */
	CILIA_DROP_UNSUPPORTED_L3 = 2,
	/* The source address is not the address of the endpoint on this interface (spoofing). */
	CILIA_DROP_INVALID_SOURCE = 3,
	/* IPv4 fragments are not tracked yet. */
	CILIA_DROP_FRAGMENT = 4,
	/* Conntrack could not create an entry. */
	CILIA_DROP_CT_CREATE_FAILED = 5,
	/* Masquerading found no free port for a new flow. */
	CILIA_DROP_NAT_NO_PORT = 6,
	/* A checksum or header rewrite helper failed. */
	CILIA_DROP_REWRITE_FAILED = 7,
	/* Policy is enforced in this direction and no allow entry matched (default deny). */
	CILIA_DROP_POLICY_DENIED = 8,
	/* The redirect helper refused the target. */
	CILIA_DROP_REDIRECT_FAILED = 9,
	/* IPv4 TTL ran out while the datapath routed the packet itself (local delivery). */
	CILIA_DROP_TTL_EXCEEDED = 10,
	/* A deny entry of the endpoint's policy matched (deny wins over allow). */
	CILIA_DROP_POLICY_DENY = 11,
	/* The endpoint's policy is not realized (enforcement `always` before it is written) or
	 * its policy map would overflow: it fails closed. */
	CILIA_DROP_POLICY_NOT_REALIZED = 12,
	/* Overlay: the destination's node has no tunnel endpoint in the ipcache. */
	CILIA_DROP_NO_TUNNEL_ENDPOINT = 13,
	/* Overlay: encapsulation (tunnel key, headroom, outer headers) failed. */
	CILIA_DROP_ENCAP_FAILED = 14,
	/* Overlay: a tunnel packet could not be decapsulated (malformed, unknown destination). */
	CILIA_DROP_DECAP_FAILED = 15,
	/* Load balancer: a connection to a service frontend with no backend to take it (answered
	 * with ICMP port unreachable, or ECONNREFUSED at the socket). */
	CILIA_DROP_NO_SERVICE = 16,
	/* Bandwidth manager, egress: the packet's EDT departure time lies beyond the horizon. */
	CILIA_DROP_EDT_HORIZON = 17,
	/* Bandwidth manager, ingress: the endpoint's ingress limit (rate and burst) is exceeded. */
	CILIA_DROP_BANDWIDTH_LIMIT = 18,
	CILIA_DROP_REASON_MAX,
};

/* Where a trace event was emitted: what the datapath did with the packet. */
enum cilia_trace_point {
	/* Delivered straight to a local endpoint (bpf_redirect_peer). */
	CILIA_TRACE_TO_ENDPOINT = 0,
	/* Handed to the host network stack (host, or routing to the outside). */
	CILIA_TRACE_TO_STACK = 1,
	/* Left through a native device after masquerading. */
	CILIA_TRACE_TO_NETWORK = 2,
	/* Reply from outside, reverse-translated. */
	CILIA_TRACE_FROM_NETWORK = 3,
	/* Assigned to the L7 proxy's socket (bpf_sk_assign) and handed to the host stack. */
	CILIA_TRACE_TO_PROXY = 4,
};

/* Traffic direction of a metrics key, seen from the endpoint or the node. */
enum cilia_direction {
	CILIA_DIR_INGRESS = 0,
	CILIA_DIR_EGRESS = 1,
};

#endif /* CILIA_DROP_H */
