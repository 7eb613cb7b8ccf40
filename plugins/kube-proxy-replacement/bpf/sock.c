/* SPDX-License-Identifier: Apache-2.0 */
/* @cilia/plugin-kube-proxy-replacement: the socket-level load balancer (cgroup v2 socket hooks,
 * attached at agent.cgroupRoot). A connection to a frontend gets its backend when the socket
 * connects — or, unconnected UDP, with each send — so its packets carry the backend's address
 * from the first: no per-packet translation, no conntrack of a frontend, nothing for the
 * datapath to rewrite. The application still sees the service: replies it receives and the
 * peer it asks for carry the frontend's address (a reverse map by socket cookie).
 *
 *   cil_sock4_connect      cgroup/connect4: TCP connect, UDP connect
 *   cil_sock4_sendmsg      cgroup/sendmsg4: unconnected UDP sendto/sendmsg
 *   cil_sock4_recvmsg      cgroup/recvmsg4: UDP recvfrom/recvmsg, the source as the frontend
 *   cil_sock4_getpeername  cgroup/getpeername4: the peer as the frontend
 *
 * A frontend with no backend fails the call at once with ECONNREFUSED (counted as drop
 * NO_SERVICE). With SOCK_HOST_NETNS_ONLY only the host's own sockets are translated (the
 * network namespace the agent runs in); pods' connections are then left to the per-packet path. */
#include "cilia/common.h"
#include "cilia/drop.h"
#include "cilia/lb.h"
#include "lib/lb.h"
#include "lib/monitor.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1
#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif

/* 1: only sockets of the agent's own network namespace (lb.socketLB.hostNamespaceOnly). */
CILIA_CONST(__u8, SOCK_HOST_NETNS_ONLY, 0);
/* The cookie of the agent's network namespace (the host's). */
CILIA_CONST(__u64, HOST_NETNS_COOKIE, 0);

/* Translates the destination of a connect or send to a frontend into a backend and remembers
 * the pair for the replies. Returns SYS_PROCEED, or SYS_REJECT with ECONNREFUSED. */
static __always_inline int sock4_xlate(struct bpf_sock_addr *ctx)
{
	struct cilia_lb4_key key = { .address = ctx->user_ip4, .dport = (__be16)ctx->user_port, .proto = (__u8)ctx->protocol };
	struct cilia_lb4_backend *backend;
	struct cilia_lb4_service *svc;
	__u64 netns, cookie;
	__u32 backend_id = 0;

	if (key.proto != IPPROTO_TCP && key.proto != IPPROTO_UDP)
		return SYS_PROCEED;
	netns = bpf_get_netns_cookie(ctx);
	if (SOCK_HOST_NETNS_ONLY && netns != HOST_NETNS_COOKIE)
		return SYS_PROCEED;
	svc = bpf_map_lookup_elem(&cilia_lb4_services, &key);
	if (!svc)
		return SYS_PROCEED;
	cookie = bpf_get_socket_cookie(ctx);
	/* The client is its network namespace (no source address yet); a socket hashes to one
	 * Maglev slot. */
	backend = svc->count ? cilia_lb4_pick(&key, svc, (__u32)(cookie ^ (cookie >> 32)), netns, 1, &backend_id) : NULL;
	if (!backend) {
		cilia_metrics_count(CILIA_DROP_NO_SERVICE, CILIA_DIR_EGRESS, 0);
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}
	{
		struct cilia_lb4_sk_key rkey = { .cookie = cookie, .address = backend->address, .port = backend->port };
		struct cilia_lb4_sk_value rval = { .address = key.address, .port = key.dport, .rev_nat_index = svc->rev_nat_index };

		bpf_map_update_elem(&cilia_lb4_sk_reverse, &rkey, &rval, BPF_ANY);
	}
	ctx->user_ip4 = backend->address;
	ctx->user_port = backend->port;
	return SYS_PROCEED;
}

/* Shows a backend's address as the frontend the socket connected or sent to. */
static __always_inline int sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct cilia_lb4_sk_key key = { .cookie = bpf_get_socket_cookie(ctx), .address = ctx->user_ip4, .port = (__be16)ctx->user_port };
	struct cilia_lb4_sk_value *frontend = bpf_map_lookup_elem(&cilia_lb4_sk_reverse, &key);

	if (frontend) {
		ctx->user_ip4 = frontend->address;
		ctx->user_port = frontend->port;
	}
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_xlate(ctx);
}

SEC("cgroup/sendmsg4")
int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate(ctx);
}

SEC("cgroup/recvmsg4")
int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}

SEC("cgroup/getpeername4")
int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}

char LICENSE[] SEC("license") = "GPL";
