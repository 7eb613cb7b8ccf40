/* SPDX-License-Identifier: Apache-2.0 */
/* Datapath event records, as written to the events ring buffer and decoded by libs/bpf's
 * codecs. Every record starts with struct cilia_event_hdr; `type` says what follows. */
#ifndef CILIA_EVENTS_H
#define CILIA_EVENTS_H

#include <linux/types.h>

enum cilia_event_type {
	CILIA_EVENT_UNSPEC = 0,
	CILIA_EVENT_DROP = 1,
	CILIA_EVENT_TRACE = 2,
	CILIA_EVENT_POLICY_VERDICT = 3,
	CILIA_EVENT_L7 = 4,
	CILIA_EVENT_DEBUG = 5,
};

struct cilia_event_hdr {
	__u8 type;      /* enum cilia_event_type */
	__u8 subtype;   /* drop reason, trace point, ... */
	__u16 source;   /* enum cilia_attach_point of the emitting program */
	__u32 ifindex;  /* device the packet was seen on, 0 if none */
	__u64 ts_ns;    /* bpf_ktime_get_ns() at emission */
};

/* A drop (hdr.type CILIA_EVENT_DROP, hdr.subtype enum cilia_drop_reason) or trace
 * (CILIA_EVENT_TRACE, subtype enum cilia_trace_point) of one packet (bpf/include/cilia/drop.h).
 * Addresses and ports in network order; zero where the packet was too short to say. */
struct cilia_packet_event {
	struct cilia_event_hdr hdr;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 ct_status;       /* enum cilia_ct_status */
	__u16 endpoint_id;    /* local endpoint concerned, 0 if none */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 len;            /* skb->len */
	__u32 target_ifindex; /* where it went (trace), 0 for the stack */
	__u8 tcp_flags;       /* TCP header flags (FIN 0x01 … CWR 0x80), 0 for other protocols */
	__u8 icmp_type;       /* ICMP type, 0 for other protocols */
	__u16 pad;
};

/* How a policy verdict was reached (cilia_policy_verdict_event.match_type). */
enum cilia_policy_match {
	CILIA_POLICY_MATCH_NONE = 0,   /* no entry: default deny, or not realized */
	CILIA_POLICY_MATCH_L3_ONLY = 1, /* a peer identity, any port */
	CILIA_POLICY_MATCH_L3_L4 = 2,  /* a peer identity and port(s) */
	CILIA_POLICY_MATCH_L4_ONLY = 3, /* any peer, port(s) */
	CILIA_POLICY_MATCH_ALL = 4,    /* any peer, any port */
};

/* hdr.subtype of a policy verdict. */
enum cilia_policy_verdict {
	CILIA_POLICY_VERDICT_ALLOWED = 0,
	CILIA_POLICY_VERDICT_DENIED = 1,
};

/* A policy verdict (hdr.type CILIA_EVENT_POLICY_VERDICT, subtype enum cilia_policy_verdict)
 * for the first packet of a connection (ct NEW) in an enforced direction. Addresses and
 * ports in network order; dport is the port policy matched on (ICMP: the type). */
struct cilia_policy_verdict_event {
	struct cilia_event_hdr hdr;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 direction;       /* enum cilia_direction */
	__u8 match_type;      /* enum cilia_policy_match */
	__u8 drop_reason;     /* enum cilia_drop_reason, 0 when allowed */
	__u16 endpoint_id;
	__be16 proxy_port;    /* from the matched allow entry, 0 = none */
	__u32 remote_identity;
};

/* How much forwarded traffic is traced (the MONITOR_AGGREGATION constant of the base objects),
 * Cilium's monitor-aggregation levels. Drops and policy verdicts are always reported. */
enum cilia_monitor_aggregation {
	CILIA_MONITOR_AGG_NONE = 0,    /* every forwarded packet */
	CILIA_MONITOR_AGG_LOWEST = 1,  /* every packet, but not at receive points (from-network) */
	CILIA_MONITOR_AGG_LOW = 2,     /* as lowest */
	CILIA_MONITOR_AGG_MEDIUM = 3,  /* new connections, and packets carrying SYN, FIN or RST */
	CILIA_MONITOR_AGG_MAXIMUM = 4, /* new connections only */
};

/* Key 0 of the per-CPU array that counts records the producer could not reserve. */
#define CILIA_EVENTS_LOST_KEY 0

#endif /* CILIA_EVENTS_H */
