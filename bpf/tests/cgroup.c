/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-address hooks: connect4 redirects one loopback port to another (what socket-level
 * load balancing does); the others only count calls, to prove they are attached. */
#include "cilia/common.h"

CILIA_CONST(__u16, from_port, 0);
CILIA_CONST(__u16, to_port, 0);

enum { HOOK_CONNECT4, HOOK_SENDMSG4, HOOK_RECVMSG4, HOOK_GETPEERNAME4,
       HOOK_CONNECT6, HOOK_SENDMSG6, HOOK_RECVMSG6, HOOK_GETPEERNAME6, HOOK_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HOOK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hook_calls SEC(".maps");

static __always_inline void count(__u32 hook)
{
	__u64 *n = bpf_map_lookup_elem(&hook_calls, &hook);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	count(HOOK_CONNECT4);
	if (ctx->user_port == bpf_htons(from_port) && ctx->user_ip4 == bpf_htonl(0x7f000001))
		ctx->user_port = bpf_htons(to_port);
	return 1;
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	count(HOOK_SENDMSG4);
	return 1;
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	count(HOOK_RECVMSG4);
	return 1;
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	count(HOOK_GETPEERNAME4);
	return 1;
}

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx)
{
	count(HOOK_CONNECT6);
	return 1;
}

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	count(HOOK_SENDMSG6);
	return 1;
}

SEC("cgroup/recvmsg6")
int sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	count(HOOK_RECVMSG6);
	return 1;
}

SEC("cgroup/getpeername6")
int sock_getpeername6(struct bpf_sock_addr *ctx)
{
	count(HOOK_GETPEERNAME6);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
