/* SPDX-License-Identifier: Apache-2.0 */
/* The per-packet context handed from the base program to each slot and back.
 *
 * It lives in skb->cb[0..4] (20 bytes), which the kernel keeps across tail calls within one
 * tc hook. The base program writes it before every tail call; a slot program reads it with
 * cilia_ctx_load(), may change it, and either returns a final tc verdict itself or stores
 * it and calls cilia_slot_next() (bpf/lib/slots.h) to continue with the next slot. Nothing
 * in it survives the hook: every base entry program starts from a fresh context. */
#ifndef CILIA_CTX_H
#define CILIA_CTX_H

#include <linux/types.h>

/* `slot` before the first slot ran (the resume program then starts at the first slot). */
#define CILIA_SLOT_NONE 0xff

/* Conntrack result for the packet (ctx->ct_status). */
enum cilia_ct_status {
	CILIA_CT_NEW = 0,         /* first packet of a connection: entry created */
	CILIA_CT_ESTABLISHED = 1, /* original direction of a known connection */
	CILIA_CT_REPLY = 2,       /* reply direction of a known connection */
	CILIA_CT_UNTRACKED = 3,   /* not tracked (e.g. ICMP errors, other protocols) */
};

/* ctx->flags */
#define CILIA_CTX_F_REDIRECTED (1 << 0) /* to-container reached by tail call from from-container */
#define CILIA_CTX_F_LOCAL_DST (1 << 1)  /* destination is a local endpoint */
#define CILIA_CTX_F_HOST_DST (1 << 2)   /* destination is the node itself */
#define CILIA_CTX_F_SNATED (1 << 3)     /* masquerading rewrote the source */
#define CILIA_CTX_F_SERVICE_ONLY (1 << 4) /* from-netdev: not for a local endpoint, offered to the
					    * service slot alone (a frontend on a node address, an
					    * ExternalIP or a LoadBalancer IP becomes one) */

struct cilia_ctx {
	__u32 src_identity;   /* security identity of the source (ipcache / endpoint) */
	__u32 dst_identity;   /* security identity of the destination */
	__u16 endpoint_id;    /* local endpoint at this attach point (source at from-container) */
	__u8 slot;            /* slot last tail-called; CILIA_SLOT_NONE before the first */
	__u8 ct_status;       /* enum cilia_ct_status */
	__u16 flags;          /* CILIA_CTX_F_* */
	__u8 drop_reason;     /* set by a slot that wants the base to drop (0 = keep going) */
	__u8 attach_point;    /* enum cilia_attach_point of the pipeline running the slot */
	__u32 target_ifindex; /* host-side ifindex the forward default delivers to, 0 = stack */
};

#endif /* CILIA_CTX_H */
