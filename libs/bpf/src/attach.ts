// Attaching programs to hooks so that re-attaching replaces (never duplicates), including
// after an agent restart: tc filters at a fixed handle/priority replaced in place, XDP
// swapped atomically, cgroup hooks through bpf links pinned in bpffs and updated in place.
import { existsSync, unlinkSync } from 'node:fs';
import { toBpfError, wrap } from './errors.js';
import { native } from './native.js';

interface Program {
  readonly fd: number;
  readonly name: string;
}

/** An interface by name or ifindex. */
export type Interface = string | number;

/** The ifindex of an interface (in this process's network namespace). */
export function ifindexOf(iface: Interface): number {
  if (typeof iface === 'number') return iface;
  return wrap(() => native().ifNameToIndex(iface));
}

export type TcDirection = 'ingress' | 'egress';

export interface TcAttachOptions {
  readonly interface: Interface;
  readonly direction: TcDirection;
  /** Filter handle; the same handle and priority replace the filter in place. Default 1. */
  readonly handle?: number;
  /** Filter priority. Default 1. */
  readonly priority?: number;
}

/** Where a tc program sits. */
export interface TcAttachment {
  readonly ifindex: number;
  readonly direction: TcDirection;
  readonly handle: number;
  readonly priority: number;
  /** Kernel id of the attached program. */
  readonly progId: number;
}

/**
 * Attaches `program` as a direct-action tc filter on the clsact qdisc (created if missing).
 * If a filter already sits at that handle/priority it is replaced atomically: packets see
 * either the old or the new program, never none.
 */
export function attachTc(program: Program, options: TcAttachOptions): TcAttachment {
  const ifindex = ifindexOf(options.interface);
  const r = wrap(
    () => native().tcAttach(ifindex, options.direction, program.fd, options.handle ?? 1, options.priority ?? 1),
    `program '${program.name}'`,
  );
  return { ifindex, direction: options.direction, handle: r.handle, priority: r.priority, progId: r.progId };
}

/** Id of the program at that tc handle/priority, 0 when none. */
export function queryTc(options: TcAttachOptions): number {
  const ifindex = ifindexOf(options.interface);
  return wrap(() => native().tcQuery(ifindex, options.direction, options.handle ?? 1, options.priority ?? 1));
}

/** Removes the tc filter at that handle/priority; false if there was none. */
export function detachTc(options: TcAttachOptions): boolean {
  const ifindex = ifindexOf(options.interface);
  return wrap(() => native().tcDetach(ifindex, options.direction, options.handle ?? 1, options.priority ?? 1));
}

export type XdpMode = 'generic' | 'native' | 'offload';

export interface XdpAttachOptions {
  readonly interface: Interface;
  /** 'generic' (skb, any device) or 'native' (driver). Default 'native'. */
  readonly mode?: XdpMode;
  /** Replace only if this program is the one attached now (compare-and-swap). */
  readonly expected?: Program;
}

/** Attaches (or atomically replaces) the XDP program of an interface; returns its id. */
export function attachXdp(program: Program, options: XdpAttachOptions): number {
  const ifindex = ifindexOf(options.interface);
  const mode = options.mode ?? 'native';
  return wrap(
    () => native().xdpAttach(ifindex, program.fd, mode, options.expected?.fd),
    `program '${program.name}'`,
  );
}

export function detachXdp(options: { interface: Interface; mode?: XdpMode }): void {
  const ifindex = ifindexOf(options.interface);
  wrap(() => native().xdpDetach(ifindex, options.mode ?? 'native'));
}

/** Ids of the XDP programs attached per mode (0: none). */
export function queryXdp(iface: Interface): { generic: number; native: number; offload: number } {
  const ifindex = ifindexOf(iface);
  return wrap(() => native().xdpQuery(ifindex));
}

/** cgroup v2 socket-address hooks (BPF_CGROUP_* attach types). */
export const CGROUP_HOOKS = {
  connect4: 10,
  connect6: 11,
  sendmsg4: 14,
  sendmsg6: 15,
  recvmsg4: 19,
  recvmsg6: 20,
  getpeername4: 29,
  getpeername6: 30,
} as const;
export type CgroupHook = keyof typeof CGROUP_HOOKS;

export interface CgroupAttachOptions {
  /** cgroup v2 directory, e.g. `/sys/fs/cgroup/unified` (root) or a child. */
  readonly cgroup: string;
  readonly hook: CgroupHook;
  /**
   * bpffs path of the link. When a link is pinned there it is updated to `program`
   * (atomic, survives restarts); otherwise a new link is created and pinned there.
   * Without it the attachment lasts until `close()` or process exit.
   */
  readonly pin?: string;
}

/** A cgroup hook attachment through a bpf link. */
export class CgroupAttachment {
  /** True when an existing pinned link was updated rather than a new one created. */
  readonly replaced: boolean;
  private linkFd: number;

  /** @internal */
  constructor(
    linkFd: number,
    replaced: boolean,
    readonly pin: string | undefined,
  ) {
    this.linkFd = linkFd;
    this.replaced = replaced;
  }

  /** Id of the program the link runs. */
  get progId(): number {
    return wrap(() => native().linkProgId(this.fd));
  }

  private get fd(): number {
    if (this.linkFd < 0) throw new Error('cgroup attachment is closed');
    return this.linkFd;
  }

  /** Drops this handle. A pinned link stays attached; an unpinned one detaches. */
  close(): void {
    if (this.linkFd >= 0) native().closeFd(this.linkFd);
    this.linkFd = -1;
  }

  /** Detaches the program from the cgroup and removes the pin. */
  detach(): void {
    wrap(() => native().linkDetach(this.fd));
    if (this.pin && existsSync(this.pin)) unlinkSync(this.pin);
    this.close();
  }
}

/** Attaches a `cgroup/<hook>` program to a cgroup v2 directory (or updates its pinned link). */
export function attachCgroup(program: Program, options: CgroupAttachOptions): CgroupAttachment {
  const type = CGROUP_HOOKS[options.hook];
  if (type === undefined) {
    throw new TypeError(`hook must be one of ${Object.keys(CGROUP_HOOKS).join(', ')}, got '${String(options.hook)}'`);
  }
  try {
    const r = native().cgroupLink(program.fd, options.cgroup, type, options.pin ?? null);
    return new CgroupAttachment(r.linkFd, r.replaced, options.pin);
  } catch (err) {
    throw toBpfError(err, `program '${program.name}' (${options.hook})`);
  }
}
