import type { CgroupHook, ProgramPlacement } from '@cilia/core';

/** The per-packet load balancer's object (bpf/lb.c). */
export const LB_OBJECT = new URL('../dist/bpf/lb.o', import.meta.url);

/** lb.o's programs and the service slots they fill. */
export const LB_PROGRAMS = {
  cil_lb_from_container: { attach: 'from-container', slot: 'service' },
  cil_lb_to_container: { attach: 'to-container', slot: 'service' },
  cil_lb_from_netdev: { attach: 'from-netdev', slot: 'service' },
} as const satisfies Record<string, ProgramPlacement & { attach: 'from-container' | 'to-container' | 'from-netdev' }>;

/** The socket-level load balancer's object (bpf/sock.c). */
export const SOCK_OBJECT = new URL('../dist/bpf/sock.o', import.meta.url);

/** sock.o's programs and the cgroup socket hooks they attach to (at agent.cgroupRoot). */
export const SOCK_PROGRAMS = {
  cil_sock4_connect: 'connect4',
  cil_sock4_sendmsg: 'sendmsg4',
  cil_sock4_recvmsg: 'recvmsg4',
  cil_sock4_getpeername: 'getpeername4',
} as const satisfies Record<string, CgroupHook>;
