/* SPDX-License-Identifier: Apache-2.0 */
/* Geneve (RFC 8926) over IPv4/UDP, built and taken apart in eBPF: the kernel has no Geneve
 * device to do it for us. Only what Cilia sends is produced (no options, Ethernet payload,
 * the source's security identity in the VNI; the outer headers are bpf/lib/udp_tunnel.h's);
 * what arrives may carry options, which are skipped unless marked critical. */
#ifndef CILIA_GENEVE_H
#define CILIA_GENEVE_H

#include "cilia/common.h"
#include <linux/if_ether.h>
#include "lib/udp_tunnel.h"

/* Geneve's payload type for an Ethernet frame (Transparent Ethernet Bridging). */
#define CILIA_ETH_P_TEB 0x6558

#define CILIA_GENEVE_VERSION_MASK 0xc0 /* first byte: version (2 bits) */
#define CILIA_GENEVE_OPTLEN_MASK 0x3f  /* first byte: option length in 4-byte words */
#define CILIA_GENEVE_F_OAM 0x80        /* second byte: a control packet, not for a pod */
#define CILIA_GENEVE_F_CRITICAL 0x40   /* second byte: options the receiver must understand */
#define CILIA_GENEVE_VNI_MAX 0xffffff

struct cilia_genevehdr {
	__u8 ver_optlen;
	__u8 flags;
	__be16 protocol;
	__u8 vni[3];
	__u8 reserved;
};
_Static_assert(sizeof(struct cilia_genevehdr) == CILIA_TUNNEL_HDR_LEN, "the tunnel header udp_tunnel.h makes room for");

/* The Geneve header for an Ethernet payload without options, `vni` in its VNI. */
static __always_inline void cilia_geneve_hdr(struct cilia_genevehdr *g, __u32 vni)
{
	__builtin_memset(g, 0, sizeof(*g));
	g->protocol = bpf_htons(CILIA_ETH_P_TEB);
	g->vni[0] = (__u8)(vni >> 16);
	g->vni[1] = (__u8)(vni >> 8);
	g->vni[2] = (__u8)vni;
}

static __always_inline __u32 cilia_geneve_vni(const struct cilia_genevehdr *g)
{
	return ((__u32)g->vni[0] << 16) | ((__u32)g->vni[1] << 8) | g->vni[2];
}

#endif /* CILIA_GENEVE_H */
