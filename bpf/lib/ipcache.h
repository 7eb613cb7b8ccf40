/* SPDX-License-Identifier: Apache-2.0 */
/* Address → security identity, longest prefix first (bpf/include/cilia/maps.h). */
#ifndef CILIA_LIB_IPCACHE_H
#define CILIA_LIB_IPCACHE_H

#include "cilia/common.h"
#include "cilia/maps.h"
#include "lib/identity.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CILIA_IPCACHE_MAX);
	__type(key, struct cilia_ipcache_key);
	__type(value, struct cilia_ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_ipcache SEC(".maps");

static __always_inline struct cilia_ipcache_value *cilia_ipcache_lookup4(__be32 addr)
{
	struct cilia_ipcache_key key = {
		.prefixlen = CILIA_IPCACHE_PREFIX_STATIC + 32,
		.family = CILIA_AF_INET,
	};

	__builtin_memcpy(key.addr, &addr, 4);
	return bpf_map_lookup_elem(&cilia_ipcache, &key);
}

/* The identity of an address; anything the ipcache does not know is the world. */
static __always_inline __u32 cilia_identity4(__be32 addr)
{
	struct cilia_ipcache_value *v = cilia_ipcache_lookup4(addr);

	return v ? v->identity : CILIA_IDENTITY_WORLD;
}

#endif /* CILIA_LIB_IPCACHE_H */
