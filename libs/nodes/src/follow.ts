import type { NodeEvent, NodeRegistry, Unsubscribe } from '@cilia/core';

/**
 * Follows the other nodes of a registry: `apply` runs for every node already there (as a join)
 * and for every join, update and leave after that, one call at a time in event order, so a leave
 * never overtakes the join before it. A failed call goes to `onError` and the next event goes on.
 */
export class NodeFollower {
  readonly #registry: NodeRegistry;
  readonly #local: string;
  readonly #apply: (event: NodeEvent) => Promise<void>;
  readonly #onError: (err: unknown, event: NodeEvent) => void;
  #tail: Promise<void> = Promise.resolve();
  #unsubscribe?: Unsubscribe;

  constructor(registry: NodeRegistry, localName: string, apply: (event: NodeEvent) => Promise<void>, onError: (err: unknown, event: NodeEvent) => void) {
    this.#registry = registry;
    this.#local = localName;
    this.#apply = apply;
    this.#onError = onError;
  }

  /** Starts following; resolves once the nodes known so far are applied. */
  async start(): Promise<void> {
    if (!this.#unsubscribe) {
      // Subscribe before listing: a node joining in between is seen twice, which apply allows.
      this.#unsubscribe = this.#registry.subscribe((event) => this.#push(event));
      for (const node of this.#registry.list()) this.#push({ type: 'join', node });
    }
    await this.settled();
  }

  /** Stops following; what was applied stays. */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves once every event queued so far, and any queued meanwhile, has been applied. */
  async settled(): Promise<void> {
    let current;
    do {
      current = this.#tail;
      await current;
    } while (current !== this.#tail);
  }

  #push(event: NodeEvent): void {
    if (event.node.name === this.#local) return;
    this.#tail = this.#tail.then(() => this.#apply(event)).catch((err: unknown) => this.#onError(err, event));
  }
}
