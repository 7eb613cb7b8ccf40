import { attachTc, detachTc, queryTc, type BpfProgram } from '@cilia/bpf';
import type { Logger } from '@cilia/core';

/**
 * Where the base datapath attaches `cil_from_netdev` (libs/datapath: tc ingress, handle 1,
 * priority 1 — the lowest priority number tc has).
 */
export const BASE_INGRESS = { handle: 1, priority: 1 } as const;
/** Our two handles at the base's priority: a move to the front goes in before the old one leaves. */
export const GENEVE_HANDLES = [0x6081, 0x6082] as const;

/**
 * Keeps the decapsulation program ahead of the base's `cil_from_netdev` on the underlay's tc
 * ingress. Both have priority 1 (nothing can be lower), so they share one cls_bpf filter list,
 * which runs its newest filter first: ours must be attached after the base's. The base attaches
 * lazily (with the node's first endpoint) and may re-attach, so `ensureFront` is called
 * whenever that may have happened: when the base's program at its handle is not the one seen
 * when ours last went in front, ours is attached again under the other handle (now first), and
 * the old copy removed — tunnel packets never meet a gap.
 */
export class IngressOrder {
  readonly #program: BpfProgram;
  readonly #ifindex: number;
  readonly #log: Logger;
  #handle?: number;
  #baseSeen = -1;

  constructor(options: { program: BpfProgram; ifindex: number; logger: Logger }) {
    this.#program = options.program;
    this.#ifindex = options.ifindex;
    this.#log = options.logger;
  }

  /** The tc handle our program is attached under, once attached. */
  get handle(): number | undefined {
    return this.#handle;
  }

  /** Puts our program in front when the base's attachment changed since; returns whether it moved. */
  ensureFront(): boolean {
    const base = queryTc({ interface: this.#ifindex, direction: 'ingress', ...BASE_INGRESS });
    if (this.#handle !== undefined && base === this.#baseSeen) return false;
    const ours = GENEVE_HANDLES.map((handle) => ({ handle, progId: queryTc({ interface: this.#ifindex, direction: 'ingress', handle, priority: BASE_INGRESS.priority }) }));
    // A free handle: attaching there inserts at the head of the list (a replace would keep the old place).
    const target = ours.find((h) => h.progId === 0)?.handle ?? GENEVE_HANDLES[0];
    if (ours.every((h) => h.progId !== 0)) detachTc({ interface: this.#ifindex, direction: 'ingress', handle: target, priority: BASE_INGRESS.priority });
    attachTc(this.#program, { interface: this.#ifindex, direction: 'ingress', handle: target, priority: BASE_INGRESS.priority });
    for (const h of ours) {
      if (h.handle !== target && h.progId !== 0) detachTc({ interface: this.#ifindex, direction: 'ingress', handle: h.handle, priority: BASE_INGRESS.priority });
    }
    this.#handle = target;
    this.#baseSeen = base;
    this.#log.debug({ ifindex: this.#ifindex, handle: target, baseProgram: base }, 'geneve receive program put in front of the base ingress program');
    return true;
  }

  /** Removes our program from the device. */
  detach(): void {
    for (const handle of GENEVE_HANDLES) detachTc({ interface: this.#ifindex, direction: 'ingress', handle, priority: BASE_INGRESS.priority });
    this.#handle = undefined;
    this.#baseSeen = -1;
  }
}
