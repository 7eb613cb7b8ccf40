import type { Encapsulation, Logger, NodeEvent, NodeInfo, NodeRegistry, Unsubscribe } from '@cilia/core';
import { SerialQueue } from './serial.js';

/** What {@link EncapsulationDriver} needs. */
export interface EncapsulationDriverOptions {
  readonly encapsulation: Encapsulation;
  readonly registry: NodeRegistry;
  /** This node, as it registers (setup gets it before any other node is known). */
  readonly local: NodeInfo;
  readonly logger: Logger;
}

/**
 * Runs an {@link Encapsulation} (overlay or native routing) against the node registry: `setup`
 * for this node first, then `upsertNode` for every other node that is there or joins or
 * changes, `deleteNode` for one that leaves. Calls go one at a time, in event order, so a
 * leave never overtakes the join before it. A failed call is logged and the next event goes on;
 * only a failed setup is the caller's.
 */
export class EncapsulationDriver {
  readonly #o: EncapsulationDriverOptions;
  readonly #log: Logger;
  readonly #queue = new SerialQueue();
  #unsubscribe?: Unsubscribe;

  constructor(options: EncapsulationDriverOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** Sets this node up, then follows the registry; resolves once the nodes known so far are in place. */
  async start(): Promise<void> {
    const { encapsulation, registry, local } = this.#o;
    await encapsulation.setup(local);
    this.#log.info({ mode: encapsulation.mode, overhead: encapsulation.overhead, node: local.name }, 'encapsulation set up');
    // Subscribe before listing: a node joining in between is seen twice, which upsert allows.
    this.#unsubscribe = registry.subscribe((event) => this.#onEvent(event));
    for (const node of registry.list()) this.#onEvent({ type: 'join', node });
    await this.settled();
  }

  /**
   * Call once the registry has listed every node (this node registered): after the queued
   * upserts, the encapsulation removes what it still has for nodes that are gone.
   */
  async pruneStale(): Promise<void> {
    const { encapsulation } = this.#o;
    if (!encapsulation.pruneStale) return;
    await this.settled();
    await encapsulation.pruneStale().catch((err: unknown) => this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'removing what belonged to departed nodes failed'));
  }

  /** Stops following the registry; what is in place stays (the datapath keeps forwarding). */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves once every queued call has run. */
  settled(): Promise<void> {
    return this.#queue.settled();
  }

  #onEvent(event: NodeEvent): void {
    const { encapsulation, local } = this.#o;
    if (event.node.name === local.name) return;
    const name = event.node.name;
    const call = event.type === 'leave' ? () => encapsulation.deleteNode(name) : () => encapsulation.upsertNode(event.node);
    this.#queue.push(
      async () => {
        await call();
        this.#log.debug({ node: name, event: event.type }, 'encapsulation updated');
      },
      (err) => this.#log.error({ node: name, event: event.type, err: err instanceof Error ? err.message : String(err) }, 'encapsulation update failed'),
    );
  }
}
