/* SPDX-License-Identifier: Apache-2.0 */
/* Keys and values of the load balancer's maps (bpf/lib/lb.h; written by @cilia/lb for the
 * kube-proxy replacement plugin). Pinned by name like every datapath map, so an agent restart
 * keeps them and what they translate. TS codecs: libs/datapath/src/maps/lb.ts, compared with
 * BTF by libs/datapath/test/bpf/layout.test.ts. Addresses and ports in network byte order. */
#ifndef CILIA_LB_H
#define CILIA_LB_H

#include <linux/types.h>

/* Where a frontend's address comes from (Kubernetes' Service types). */
enum cilia_lb_frontend_type {
	CILIA_LB_CLUSTER_IP = 0,
	CILIA_LB_NODE_PORT = 1,    /* a node address: replies must leave from this node */
	CILIA_LB_EXTERNAL_IP = 2,
	CILIA_LB_LOAD_BALANCER = 3,
};

/* How a new connection picks among a frontend's backends. */
enum cilia_lb_algorithm {
	CILIA_LB_RANDOM = 0, /* uniformly among slots 1..count */
	CILIA_LB_MAGLEV = 1, /* the slot of the flow's hash in the frontend's Maglev table */
};

/* A backend's state: only active (or, when none is, terminating) ones are in the slots new
 * connections choose from; every state keeps serving the connections it has. */
enum cilia_lb_backend_state {
	CILIA_LB_BACKEND_ACTIVE = 0,
	CILIA_LB_BACKEND_TERMINATING = 1,
	CILIA_LB_BACKEND_QUARANTINED = 2,
	CILIA_LB_BACKEND_MAINTENANCE = 3,
};

/* --- cilia_lb4_services: HASH, {frontend, slot} → the frontend (slot 0) or a backend ----
 * Slot 0 describes the frontend; slots 1..count name the backends new connections choose
 * from. Changing a frontend's backends rewrites its slots first and its slot 0 (count) last,
 * so a packet never meets a count beyond the slots written. */
#define CILIA_LB4_SERVICES_MAX 262144

struct cilia_lb4_key {
	__be32 address;     /* frontend address */
	__be16 dport;       /* frontend port */
	__u16 backend_slot; /* 0: the frontend; 1..count: its backends */
	__u8 proto;         /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 pad[3];
};

/* cilia_lb4_service.flags (slot 0) */
#define CILIA_LB_F_LOCAL_ONLY (1 << 0) /* a Local traffic policy: no backend here means no answer at all */

struct cilia_lb4_service {
	__u32 backend_id;       /* slot >= 1: the backend in that slot */
	__u32 affinity_timeout; /* slot 0: seconds of ClientIP affinity, 0 = none */
	__u16 count;            /* slot 0: backends new connections choose from (slots 1..count) */
	__u16 rev_nat_index;    /* the frontend's id (every slot): cilia_lb4_reverse_nat, conntrack */
	__u8 type;              /* slot 0: enum cilia_lb_frontend_type */
	__u8 algorithm;         /* slot 0: enum cilia_lb_algorithm */
	__u16 flags;            /* slot 0: CILIA_LB_F_* */
};

/* --- cilia_lb4_backends: HASH, backend id → backend ----------------------------------- */
#define CILIA_LB4_BACKENDS_MAX 262144

struct cilia_lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 state; /* enum cilia_lb_backend_state */
};

/* --- cilia_lb4_reverse_nat: HASH, frontend id (rev_nat_index) → frontend ------------------
 * What a reply's source becomes again: conntrack entries of translated connections carry the
 * id (cilia_ct_value.rev_nat_index). */
#define CILIA_LB4_REVERSE_NAT_MAX 65536

struct cilia_lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* --- cilia_lb4_flows: LRU_HASH, a connection to a frontend → its backend ------------------
 * Keyed like conntrack by the tuple the client sent (destination: the frontend), written by the
 * per-packet path when it picks a backend, so every later packet of the connection goes to the
 * same one whatever happens to the frontend's slots. Expires with the translated connection's
 * conntrack entry. */
#define CILIA_LB4_FLOWS_MAX 65536

struct cilia_lb4_flow {
	__u64 expires_ns;    /* CLOCK_MONOTONIC deadline, as the conntrack entry's */
	__u32 backend_id;
	__u16 rev_nat_index;
	__u16 pad;
};

/* --- cilia_lb4_affinity: LRU_HASH, {client, frontend} → the backend it had last -----------
 * ClientIP session affinity: the client is its IPv4 address (per-packet path) or its network
 * namespace's cookie (socket path, which sees no source address at connect time). */
#define CILIA_LB_AFFINITY_MAX 65536

struct cilia_lb_affinity_key {
	__u64 client;        /* IPv4 address (network order, in the low 4 bytes) or netns cookie */
	__u16 rev_nat_index;
	__u8 netns;          /* 1: client is a netns cookie */
	__u8 pad[5];
};

struct cilia_lb_affinity_value {
	__u64 last_used_ns; /* CLOCK_MONOTONIC */
	__u32 backend_id;
	__u32 pad;
};

/* --- cilia_lb_affinity_match: HASH, {backend, frontend} → 1 while the backend is one of the
 * frontend's selectable backends: an affinity to a backend that left is not honoured. */
#define CILIA_LB_AFFINITY_MATCH_MAX 262144

struct cilia_lb_affinity_match {
	__u32 backend_id;
	__u16 rev_nat_index;
	__u16 pad;
};

/* --- cilia_lb4_maglev: HASH_OF_MAPS, frontend id → its Maglev table -----------------------
 * The inner map is an ARRAY of LB_MAGLEV_TABLE_SIZE backend ids (a load-time constant of the
 * objects; BPF_F_INNER_MAP lets every size share the outer map), built by @cilia/lb the same
 * on every node for the same backends. */
#define CILIA_LB4_MAGLEV_MAX 65536

/* --- cilia_lb4_sk_reverse: LRU_HASH, {socket, backend} → the frontend it connected to --------
 * Written by the socket hooks when they translate a connect or a send, read when a reply is
 * received (recvmsg) or the peer is asked for (getpeername), so the application sees the
 * service address throughout. */
#define CILIA_LB4_SK_REVERSE_MAX 65536

struct cilia_lb4_sk_key {
	__u64 cookie;    /* socket cookie */
	__be32 address;  /* backend */
	__be16 port;
	__u16 pad;
};

struct cilia_lb4_sk_value {
	__be32 address;  /* frontend */
	__be16 port;
	__u16 rev_nat_index;
};

#endif /* CILIA_LB_H */
