/* SPDX-License-Identifier: Apache-2.0 */
/* Includes every BPF program of Cilia starts with. */
#ifndef CILIA_COMMON_H
#define CILIA_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Load-time constant: set by the agent before load (libs/bpf `setConstant`), read-only
 * afterwards, so the verifier prunes branches that depend on it. */
#define CILIA_CONST(type, name, dflt) volatile const type name = dflt

/* Keeps a struct's layout in the object's BTF even when no map or global names it (records
 * only written through ringbuf pointers), so libs/bpf's layout check can compare its codec. */
#define CILIA_BTF_ANCHOR(tag) \
	const struct tag *__cilia_btf_##tag __attribute__((unused, section(".bss")))

/* Same for an enum, so its constants can be checked against the TS side. */
#define CILIA_BTF_ENUM_ANCHOR(tag) \
	const enum tag *__cilia_btf_enum_##tag __attribute__((unused, section(".bss")))

#endif /* CILIA_COMMON_H */
