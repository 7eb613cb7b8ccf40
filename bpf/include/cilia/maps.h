/* SPDX-License-Identifier: Apache-2.0 */
/* Keys and values of the datapath maps. Every map is pinned by name under the agent's bpf
 * root (LIBBPF_PIN_BY_NAME) and shared by every object that declares it, so base and plugin
 * objects see one copy that outlives agent restarts. The map definitions live in bpf/lib
 * (one header per concern); the TS codecs in libs/datapath/src/maps mirror these layouts and a test
 * compares them with BTF. Addresses and ports are in network byte order. */
#ifndef CILIA_MAPS_H
#define CILIA_MAPS_H

#include <linux/types.h>
#include "cilia/slots.h"

#define CILIA_AF_INET 2
#define CILIA_AF_INET6 10

/* --- cilia_endpoints: HASH, local endpoint address → endpoint ------------------------- */
#define CILIA_ENDPOINTS_MAX 4096

struct cilia_endpoint_key {
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero; IPv6 whole */
	__u8 family;   /* CILIA_AF_INET / CILIA_AF_INET6 */
	__u8 pad[3];
};

/* cilia_endpoint_info.flags */
#define CILIA_ENDPOINT_F_HOST (1 << 0) /* the entry stands for the node itself */

struct cilia_endpoint_info {
	__u32 ifindex;      /* the pod-side interface's ifindex (in the pod's netns) */
	__u32 host_ifindex; /* the host-side veth: redirect target, anti-spoofing check */
	__u32 identity;     /* security identity */
	__u16 endpoint_id;
	__u16 flags;        /* CILIA_ENDPOINT_F_* */
	__u8 mac[6];        /* the pod interface's MAC */
	__u8 host_mac[6];   /* the host-side veth's MAC (the pod's gateway MAC) */
};

/* --- cilia_ipcache: LPM_TRIE, prefix → identity ---------------------------------------- */
#define CILIA_IPCACHE_MAX 65536
/* prefixlen counts the family byte + padding (32 bits) plus the address prefix. */
#define CILIA_IPCACHE_PREFIX_STATIC 32

struct cilia_ipcache_key {
	__u32 prefixlen; /* CILIA_IPCACHE_PREFIX_STATIC + prefix length */
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];   /* IPv4 in the first 4 bytes */
};

struct cilia_ipcache_value {
	__u32 identity;
	__be32 tunnel_endpoint; /* node address for overlay (0 = none, later issues) */
	__u16 flags;
	__u16 pad;
};

/* --- cilia_ct: LRU_HASH, IPv4 connection → state ---------------------------------------
 * The key is the tuple of the connection's original direction (the first packet seen);
 * a reply is found by looking up its reversed tuple. ICMP echo uses the identifier as both
 * ports. User space deletes entries whose `expires_ns` (CLOCK_MONOTONIC, as
 * bpf_ktime_get_ns) has passed; the LRU evicts the oldest when the map is full. */
#define CILIA_CT_MAX 65536

struct cilia_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 flags;   /* reserved (direction-split tables later), 0 */
	__u16 pad;
};

enum cilia_ct_state {
	CILIA_CT_STATE_NONE = 0,
	CILIA_CT_STATE_SYN_SENT = 1,    /* TCP: SYN seen */
	CILIA_CT_STATE_SYN_RECV = 2,    /* TCP: SYN-ACK seen */
	CILIA_CT_STATE_ESTABLISHED = 3, /* TCP: handshake done; UDP/ICMP: a reply seen */
	CILIA_CT_STATE_FIN_WAIT = 4,    /* TCP: FIN from one side */
	CILIA_CT_STATE_CLOSING = 5,     /* TCP: FIN from both sides */
	CILIA_CT_STATE_CLOSED = 6,      /* TCP: RST */
	CILIA_CT_STATE_UNREPLIED = 7,   /* UDP/ICMP: no reply yet */
};

/* cilia_ct_value.flags */
#define CILIA_CT_F_FIN_ORIG (1 << 0)  /* FIN seen in the original direction */
#define CILIA_CT_F_FIN_REPLY (1 << 1) /* FIN seen in the reply direction */
#define CILIA_CT_F_SNAT (1 << 2)      /* the connection is masqueraded */

struct cilia_ct_value {
	__u64 expires_ns;     /* CLOCK_MONOTONIC deadline */
	__u64 packets_orig;
	__u64 bytes_orig;
	__u64 packets_reply;
	__u64 bytes_reply;
	__u32 src_identity;
	__u16 rev_nat_index;  /* service reverse translation (load balancing, later) */
	__u8 state;           /* enum cilia_ct_state */
	__u8 flags;           /* CILIA_CT_F_* */
};

/* --- cilia_snat: LRU_HASH, tuple → translated tuple (masquerade) -----------------------
 * Two entries per flow: the egress entry keyed by the pod's tuple (dir EGRESS) gives the
 * node address and port; the ingress entry keyed by the reply's tuple as it arrives
 * (remote → node:port, dir INGRESS) gives the pod address and port back. */
#define CILIA_SNAT_MAX 65536

struct cilia_snat_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;     /* enum cilia_direction */
	__u16 pad;
};

struct cilia_snat_value {
	__u64 expires_ns; /* CLOCK_MONOTONIC deadline, refreshed by traffic */
	__be32 addr;      /* egress: new source; ingress: original (pod) destination */
	__be16 port;
	__u16 pad;
};

/* --- cilia_ipv4_frags: LRU_HASH, a fragmented datagram → its first fragment's ports ------
 * Only the first fragment of a datagram carries the L4 header; the others are matched to it
 * by source, destination, IP ID and protocol (what the kernel reassembles by), so conntrack,
 * policy and NAT see the same ports for every fragment. */
#define CILIA_IPV4_FRAGS_MAX 8192

struct cilia_ipv4_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct cilia_ipv4_frag_l4 {
	__be16 sport;
	__be16 dport;
	__u8 icmp_type;
	__u8 pad[3];
};

/* --- cilia_bandwidth: HASH, {endpoint id, direction} → rate limit and its clock --------
 * Written by the bandwidth manager (@cilia/plugin-bandwidth-manager) from the Pod annotations
 * kubernetes.io/egress-bandwidth and kubernetes.io/ingress-bandwidth; read and advanced by its
 * slot programs (bpf/lib/bandwidth.h). Egress is paced with EDT: each packet of the endpoint
 * leaving the node gets a departure time t_last + wire length / rate in skb->tstamp (fq on the
 * device holds it until then), a packet that would leave more than horizon_ns ahead is dropped.
 * Ingress is policed on the same clock: a packet is let through while its departure time lies
 * within horizon_ns (the burst at the rate) and dropped otherwise; nothing is delayed, so no
 * qdisc is needed. No entry, or rate 0: no limit. */
#define CILIA_BANDWIDTH_MAX 8192

struct cilia_bandwidth_key {
	__u32 endpoint_id;
	__u8 direction; /* enum cilia_direction */
	__u8 pad[3];
};

struct cilia_bandwidth_value {
	__u64 rate;       /* bytes per second; 0 = unlimited */
	__u64 horizon_ns; /* egress: drop horizon; ingress: burst tolerance (burst bytes at the rate) */
	__u64 t_last;     /* CLOCK_MONOTONIC departure time of the last packet let through */
	__u64 drops;      /* packets dropped for this limit */
};

/* --- cilia_metrics: PERCPU_HASH, {reason, direction} → counters ------------------------ */
#define CILIA_METRICS_MAX 1024

struct cilia_metrics_key {
	__u8 reason; /* enum cilia_drop_reason, 0 = forwarded */
	__u8 dir;    /* enum cilia_direction */
	__u16 pad;
};

struct cilia_metrics_value {
	__u64 packets;
	__u64 bytes;
};

/* --- cilia_tc_slots: PROG_ARRAY of every tc attach point's slots -------------------------
 * Index = attach point (enum cilia_attach_point) * CILIA_SLOTS_PER_AP + slot (enum cilia_slot,
 * or enum cilia_slot_window), all in slots.h. Index CILIA_SLOT_RESUME of each window holds the
 * base object's resume program for that attach point (installed by the loader), through which
 * a slot program continues the pipeline.
 *
 * CILIA_SLOT_PRE and CILIA_SLOT_MAIN are a hook in front of the whole base program, for what
 * must see a packet before the base parses it (from-netdev: a tunnel's receive program). The
 * entry program tail-calls PRE first; a pre program either owns the packet or hands it back
 * through MAIN, where the loader installs the base program without the hook. Only from-netdev
 * has them so far. */
#define CILIA_TC_SLOTS_MAX (CILIA_AP_MAX * CILIA_SLOTS_PER_AP)
#define CILIA_SLOT_INDEX(ap, slot) ((ap) * CILIA_SLOTS_PER_AP + (slot))

/* --- cilia_policy: LPM_TRIE, {endpoint, direction, identity, protocol, port prefix} → verdict
 * One trie for every endpoint. The fixed part (endpoint, direction, pad, identity: 64 bits)
 * always matches exactly; after it the protocol (8 bits) when the entry names one, then pad2
 * (8 bits, always 0) and the port's prefix (0..16 bits) when the entry names ports: a port
 * range is written as the aligned prefixes that cover it. So prefixlen is 64 (any protocol),
 * 72 (a protocol, any port) or 80 + port prefix bits (a port range; 96 = one port). Identity 0
 * matches every peer: the datapath looks up the peer's identity and identity 0, and a deny
 * from either wins (bpf/lib/policy.h). ICMP/ICMPv6 entries keep the ICMP type in dport. */
#define CILIA_POLICY_MAX 262144
#define CILIA_POLICY_PREFIX_STATIC 64
#define CILIA_POLICY_PREFIX_PROTO 72
#define CILIA_POLICY_PREFIX_PORT 80
#define CILIA_POLICY_PREFIX_FULL 96

struct cilia_policy_key {
	__u32 prefixlen;    /* bits after this field, see above */
	__be16 endpoint_id;
	__u8 direction;     /* enum cilia_direction */
	__u8 pad;
	__be32 identity;    /* peer identity, 0 = any */
	__u8 protocol;      /* IP protocol, 0 = any (only with prefixlen 64) */
	__u8 pad2;
	__be16 dport;       /* destination port (ICMP: type) */
};

/* cilia_policy_value.flags */
#define CILIA_POLICY_F_DENY (1 << 0)          /* deny entry (else allow) */
#define CILIA_POLICY_F_WILDCARD_PORT (1 << 1) /* the entry names no port (prefixlen <= 72) */

struct cilia_policy_value {
	__u8 flags;        /* CILIA_POLICY_F_* */
	__u8 pad;
	__be16 proxy_port; /* L7 proxy port to redirect to, 0 = none (not used yet) */
	__u32 pad2;
};

/* --- cilia_policy_endpoints: HASH, endpoint id → enforcement per direction --------------
 * Written after the endpoint's cilia_policy entries, so enforcement never starts before
 * its allows are there. An endpoint without an entry is treated by POLICY_DEFAULT_DENY
 * (bpf/policy.c): allow-all, or dropped as not realized. */
#define CILIA_POLICY_ENDPOINTS_MAX 4096

enum cilia_policy_mode {
	CILIA_POLICY_ALLOW_ALL = 0, /* direction not enforced */
	CILIA_POLICY_ENFORCE = 1,   /* lookups in cilia_policy, default deny */
	CILIA_POLICY_DENY_ALL = 2,  /* fail closed: every new connection dropped (reason 12) */
};

struct cilia_policy_endpoint {
	__u8 ingress;   /* enum cilia_policy_mode */
	__u8 egress;    /* enum cilia_policy_mode */
	__u16 flags;    /* reserved, 0 */
	__u32 revision; /* policy revision realized (for user space; the datapath ignores it) */
};

#endif /* CILIA_MAPS_H */
