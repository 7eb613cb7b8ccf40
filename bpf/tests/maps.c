/* SPDX-License-Identifier: Apache-2.0 */
/* Maps of each kind the agent uses, for the map API tests and benchmarks. */
#include "cilia/common.h"

struct test_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 dir;
};

/* test_value.action; anchored in BTF for the btfEnum test. */
enum test_action {
	TEST_ACTION_PASS = 0,
	TEST_ACTION_DROP = 1,
	TEST_ACTION_REDIRECT = 7,
};

struct test_value {
	__u64 packets;
	__u64 bytes;
	__u32 flags;
	__u16 proxy_port;
	__u8 action; /* enum test_action */
	__u8 pad;
};

CILIA_BTF_ENUM_ANCHOR(test_action);

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct test_key);
	__type(value, struct test_value);
} tiny_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct test_key);
	__type(value, struct test_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} big_hash SEC(".maps");

/* Preallocated: updates never allocate, the shape of the agent's hot maps. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct test_key);
	__type(value, struct test_value);
} big_hash_prealloc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lpm_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_lru SEC(".maps");

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

/* Map-in-map: slot 0 holds an inner array filled from user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer SEC(".maps");

/* Returns inner[0] of the map in outer[0], or 99 when slot 0 is empty. */
SEC("tc")
int cls_inner_lookup(struct __sk_buff *skb)
{
	__u32 key = 0;
	void *inner = bpf_map_lookup_elem(&outer, &key);
	__u32 *v;

	if (!inner)
		return 99;
	v = bpf_map_lookup_elem(inner, &key);
	return v ? *v : 98;
}

/* Increments pcpu_array[0] on the CPU it runs on, so per-CPU reads have something to sum. */
SEC("tc")
int cls_pcpu_inc(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&pcpu_array, &key);

	if (v)
		*v += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
