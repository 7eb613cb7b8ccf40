/* SPDX-License-Identifier: Apache-2.0 */
/* skb->mark as the datapath and the L7 proxy use it (Cilium's magic marks, bits 8-11):
 *
 *   TO_PROXY    set by the policy slot on a packet its policy entry sends to the L7 proxy, with
 *               the proxy port (host order) in bits 16-31; the l7-redirect slot assigns it to
 *               the proxy's socket and the node's routing delivers it locally (an fwmark rule
 *               TO_PROXY/MAGIC_MASK → table CILIA_PROXY_ROUTE_TABLE: `local default dev lo`).
 *   FROM_PROXY  set by the proxy (SO_MARK) on its upstream connections: the identity of the
 *               original source in bits 16-31 (low 16 bits) and 0-7 (high 8 bits), which
 *               to-container takes as the source identity; such a packet is never sent to the
 *               proxy again.
 *
 * ABI: TypeScript's `ProxyMark` in @cilia/datapath mirrors it (checked against BTF). */
#ifndef CILIA_MARK_H
#define CILIA_MARK_H

enum cilia_mark {
	CILIA_MARK_MAGIC_MASK = 0x0F00,
	CILIA_MARK_TO_PROXY = 0x0200,
	CILIA_MARK_FROM_PROXY = 0x0B00,
	CILIA_MARK_PROXY_ROUTE_TABLE = 2004, /* the routing table of TO_PROXY packets */
	CILIA_MARK_PROXY_RULE_PRIORITY = 9,  /* its fwmark rule: after `local` (0), before `main` (32766) */
};

#endif /* CILIA_MARK_H */
