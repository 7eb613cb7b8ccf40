/* SPDX-License-Identifier: Apache-2.0 */
/* The local endpoints: one map entry per endpoint address (bpf/include/cilia/maps.h). */
#ifndef CILIA_LIB_ENDPOINTS_H
#define CILIA_LIB_ENDPOINTS_H

#include "cilia/common.h"
#include "cilia/maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CILIA_ENDPOINTS_MAX);
	__type(key, struct cilia_endpoint_key);
	__type(value, struct cilia_endpoint_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilia_endpoints SEC(".maps");

static __always_inline struct cilia_endpoint_info *cilia_endpoint_lookup4(__be32 addr)
{
	struct cilia_endpoint_key key = { .family = CILIA_AF_INET };

	__builtin_memcpy(key.addr, &addr, 4);
	return bpf_map_lookup_elem(&cilia_endpoints, &key);
}

#endif /* CILIA_LIB_ENDPOINTS_H */
