/* SPDX-License-Identifier: Apache-2.0 */
/* Masquerading (SNAT) of IPv4 flows leaving the node, and the reverse translation of their
 * replies (bpf/include/cilia/maps.h, cilia_snat).
 *
 * A new flow gets a port from [NAT_PORT_MIN, NAT_PORT_MAX] (above Linux's default ephemeral
 * range, so the node's own sockets do not collide with it): a random start, then the next
 * ports in turn, claiming the first whose reply tuple {remote, node address, port} is free.
 * Both entries are refreshed by traffic and expire like conntrack entries. ICMP errors
 * about a masqueraded flow are translated back too, so path MTU discovery keeps working. */
#ifndef CILIA_LIB_NAT_H
#define CILIA_LIB_NAT_H

#include "cilia/common.h"
#include "cilia/drop.h"
#include "cilia/maps.h"
#include "lib/conntrack.h"
#include "lib/tuple.h"

/* The node address flows are masqueraded to (host byte order; 0 = masquerading off). */
CILIA_CONST(__u32, SNAT_IPV4, 0);
CILIA_CONST(__u16, NAT_PORT_MIN, 61000);
CILIA_CONST(__u16, NAT_PORT_MAX, 65535);

/* Ports tried for a new flow before giving up with CILIA_DROP_NAT_NO_PORT. */
#define CILIA_NAT_TRIES 32

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CILIA_SNAT_MAX);
	__type(key, struct cilia_snat_key);
	__type(value, struct cilia_snat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_snat SEC(".maps");

static __always_inline __u64 cilia_nat_lifetime(const struct cilia_tuple *t)
{
	if (t->proto == IPPROTO_TCP)
		return (t->tcp_flags & (CILIA_TCP_FIN | CILIA_TCP_RST)) ? CILIA_CT_LIFETIME_TCP_CLOSE
									: CILIA_CT_LIFETIME_TCP;
	return t->proto == IPPROTO_ICMP ? CILIA_CT_LIFETIME_ICMP : CILIA_CT_LIFETIME_UDP;
}

/* Rewrites the source (src = 1) or destination address in the IPv4 header, fixing its checksum. */
static __always_inline int cilia_nat_rewrite_addr4(struct __sk_buff *skb, int src, __be32 old_addr, __be32 new_addr)
{
	__u32 addr_off = ETH_HLEN + (src ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr));

	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_addr, new_addr, 4) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, addr_off, &new_addr, 4, 0) < 0 ? -1 : 0;
}

/* Rewrites the source (src = 1) or destination address and port of the packet `t` describes,
 * fixing the IPv4 and L4 checksums. ICMP echo has one identifier for both "ports". */
static __always_inline int cilia_nat_rewrite4(struct __sk_buff *skb, const struct cilia_tuple *t, int src,
					      __be32 new_addr, __be16 new_port)
{
	__be32 old_addr = src ? t->saddr : t->daddr;
	__be16 old_port = src ? t->sport : t->dport;
	__u32 csum_off, port_off, l4_flags = 0;

	/* A later fragment has no L4 header: its datagram's checksum and ports are the first's. */
	if (t->frag == CILIA_TUPLE_LATER_FRAGMENT)
		return cilia_nat_rewrite_addr4(skb, src, old_addr, new_addr);
	if (t->proto == IPPROTO_TCP) {
		csum_off = t->l4_off + offsetof(struct tcphdr, check);
		port_off = t->l4_off + (src ? offsetof(struct tcphdr, source) : offsetof(struct tcphdr, dest));
	} else if (t->proto == IPPROTO_UDP) {
		csum_off = t->l4_off + offsetof(struct udphdr, check);
		port_off = t->l4_off + (src ? offsetof(struct udphdr, source) : offsetof(struct udphdr, dest));
		l4_flags = BPF_F_MARK_MANGLED_0;
	} else {
		csum_off = t->l4_off + offsetof(struct cilia_icmphdr, checksum);
		port_off = t->l4_off + offsetof(struct cilia_icmphdr, id);
	}
	/* The ICMP checksum covers no pseudo-header: only the identifier changes it. */
	if (t->proto != IPPROTO_ICMP &&
	    bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, l4_flags | BPF_F_PSEUDO_HDR | 4) < 0)
		return -1;
	if (cilia_nat_rewrite_addr4(skb, src, old_addr, new_addr) < 0)
		return -1;
	if (new_port == old_port)
		return 0;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, l4_flags | 2) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0) < 0 ? -1 : 0;
}

/* The reply tuple of a masqueraded flow as it will arrive: remote → node:port. */
static __always_inline void cilia_snat_reply_key(struct cilia_snat_key *k, const struct cilia_tuple *t,
						 __be32 nat_addr, __be16 nat_port)
{
	k->saddr = t->daddr;
	k->daddr = nat_addr;
	k->sport = t->proto == IPPROTO_ICMP ? nat_port : t->dport;
	k->dport = nat_port;
	k->proto = t->proto;
	k->dir = CILIA_DIR_INGRESS;
	k->pad = 0;
}

/* Claims a port for a new flow: the first free one from a random start. Returns it (network
 * order) or 0 when CILIA_NAT_TRIES ports in a row are taken. */
static __always_inline __be16 cilia_snat_alloc4(const struct cilia_tuple *t, __be32 nat_addr, __u64 expires)
{
	__u32 range = (__u32)NAT_PORT_MAX - NAT_PORT_MIN + 1;
	__u32 start = bpf_get_prandom_u32() % range;
	struct cilia_snat_value back = { .expires_ns = expires, .addr = t->saddr, .port = t->sport };
	struct cilia_snat_key k;
	__u64 now = bpf_ktime_get_ns();

	for (__u32 i = 0; i < CILIA_NAT_TRIES; i++) {
		__be16 port = bpf_htons((__u16)(NAT_PORT_MIN + (start + i) % range));
		struct cilia_snat_value *taken;

		cilia_snat_reply_key(&k, t, nat_addr, port);
		taken = bpf_map_lookup_elem(&cilia_snat, &k);
		if (taken && taken->expires_ns > now)
			continue;
		if (bpf_map_update_elem(&cilia_snat, &k, &back, BPF_ANY) == 0)
			return port;
	}
	return 0;
}

/* Masquerades an outgoing packet to SNAT_IPV4. Returns 0 or a drop reason; *created says
 * whether the flow got a new port. */
static __always_inline int cilia_snat4(struct __sk_buff *skb, const struct cilia_tuple *t, int *created)
{
	struct cilia_snat_key key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport,
		.proto = t->proto, .dir = CILIA_DIR_EGRESS,
	};
	__be32 nat_addr = bpf_htonl(SNAT_IPV4);
	__u64 now = bpf_ktime_get_ns();
	__u64 expires = now + cilia_nat_lifetime(t);
	struct cilia_snat_value *v = bpf_map_lookup_elem(&cilia_snat, &key);
	struct cilia_snat_value out = { .expires_ns = expires, .addr = nat_addr };

	*created = 0;
	if (v && v->expires_ns > now && v->addr == nat_addr) {
		struct cilia_snat_key rk;
		struct cilia_snat_value *rv;

		out.port = v->port;
		v->expires_ns = expires;
		cilia_snat_reply_key(&rk, t, nat_addr, out.port);
		rv = bpf_map_lookup_elem(&cilia_snat, &rk);
		if (rv)
			rv->expires_ns = expires;
	} else {
		out.port = cilia_snat_alloc4(t, nat_addr, expires);
		if (!out.port)
			return CILIA_DROP_NAT_NO_PORT;
		if (bpf_map_update_elem(&cilia_snat, &key, &out, BPF_ANY) < 0)
			return CILIA_DROP_NAT_NO_PORT;
		*created = 1;
	}
	return cilia_nat_rewrite4(skb, t, 1, nat_addr, out.port) ? CILIA_DROP_REWRITE_FAILED : 0;
}

/* Translates a reply to a masqueraded flow back to the pod. Returns 1 when translated (the
 * tuple then describes the packet as rewritten), 0 when it is no such reply, or
 * -reason on failure. */
static __always_inline int cilia_snat_rev4(struct __sk_buff *skb, struct cilia_tuple *t)
{
	struct cilia_snat_key key = {
		.saddr = t->saddr, .daddr = t->daddr, .sport = t->sport, .dport = t->dport,
		.proto = t->proto, .dir = CILIA_DIR_INGRESS,
	};
	struct cilia_snat_value *v = bpf_map_lookup_elem(&cilia_snat, &key);
	__u64 now = bpf_ktime_get_ns();
	__be32 addr;
	__be16 port;

	if (!v || v->expires_ns <= now)
		return 0;
	addr = v->addr;
	port = v->port;
	v->expires_ns = now + cilia_nat_lifetime(t);
	if (cilia_nat_rewrite4(skb, t, 0, addr, port))
		return -CILIA_DROP_REWRITE_FAILED;
	t->daddr = addr;
	t->dport = port;
	if (t->proto == IPPROTO_ICMP)
		t->sport = port;
	return 1;
}

#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11

/* Translates an ICMP error about a masqueraded flow (destination unreachable, e.g.
 * "fragmentation needed" for path MTU discovery, or time exceeded) back to the pod: the
 * outer destination, and the quoted packet's source address and port, with the outer IPv4,
 * quoted IPv4 and ICMP checksums kept valid. Returns 1 when translated (t->daddr is then the
 * pod), 0 when it is no such error, or -reason on failure. */
static __always_inline int cilia_snat_rev_icmp_error4(struct __sk_buff *skb, struct cilia_tuple *t)
{
	__u32 icmp_csum = t->l4_off + offsetof(struct cilia_icmphdr, checksum);
	__u32 inner = t->l4_off + sizeof(struct cilia_icmphdr);
	__u32 inner_l4 = inner + sizeof(struct iphdr);
	struct cilia_snat_key key = { .dir = CILIA_DIR_INGRESS };
	struct cilia_snat_value *v;
	struct iphdr ip;
	__be16 ports[2]; /* TCP/UDP source, destination; ICMP echo: type+code, checksum */
	__be16 id, old_csum, new_csum;
	__u32 port_off;
	__be32 pod;
	__be16 pod_port;

	if (t->proto != IPPROTO_ICMP || (t->icmp_type != ICMP_DEST_UNREACH && t->icmp_type != ICMP_TIME_EXCEEDED))
		return 0;
	if (bpf_skb_load_bytes(skb, inner, &ip, sizeof(ip)) < 0 || ip.ihl != 5 || ip.saddr != t->daddr)
		return 0;
	if (bpf_skb_load_bytes(skb, inner_l4, ports, sizeof(ports)) < 0)
		return 0;
	key.saddr = ip.daddr;
	key.daddr = ip.saddr;
	key.proto = ip.protocol;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP) {
		key.sport = ports[1];
		key.dport = ports[0];
		port_off = inner_l4;
	} else if (ip.protocol == IPPROTO_ICMP) {
		if (bpf_skb_load_bytes(skb, inner_l4 + offsetof(struct cilia_icmphdr, id), &id, 2) < 0)
			return 0;
		key.sport = id;
		key.dport = id;
		port_off = inner_l4 + offsetof(struct cilia_icmphdr, id);
	} else {
		return 0;
	}
	v = bpf_map_lookup_elem(&cilia_snat, &key);
	if (!v || v->expires_ns <= bpf_ktime_get_ns())
		return 0;
	pod = v->addr;
	pod_port = v->port;

	/* Quoted packet: its source address (and its header checksum), then its source port;
	 * the ICMP checksum covers all of it. */
	if (bpf_skb_load_bytes(skb, inner + offsetof(struct iphdr, check), &old_csum, 2) < 0 ||
	    bpf_l3_csum_replace(skb, inner + offsetof(struct iphdr, check), ip.saddr, pod, 4) < 0 ||
	    bpf_skb_store_bytes(skb, inner + offsetof(struct iphdr, saddr), &pod, 4, 0) < 0 ||
	    bpf_skb_load_bytes(skb, inner + offsetof(struct iphdr, check), &new_csum, 2) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, ip.saddr, pod, 4) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, old_csum, new_csum, 2) < 0)
		return -CILIA_DROP_REWRITE_FAILED;
	if (bpf_skb_load_bytes(skb, port_off, &id, 2) < 0 ||
	    bpf_l4_csum_replace(skb, icmp_csum, id, pod_port, 2) < 0 ||
	    bpf_skb_store_bytes(skb, port_off, &pod_port, 2, 0) < 0)
		return -CILIA_DROP_REWRITE_FAILED;
	/* Outer destination: only the IPv4 header checksum covers it. */
	if (cilia_nat_rewrite_addr4(skb, 0, t->daddr, pod) < 0)
		return -CILIA_DROP_REWRITE_FAILED;
	t->daddr = pod;
	return 1;
}

#endif /* CILIA_LIB_NAT_H */
