import type { Encapsulation, Logger, NodeEvent, NodeInfo, NodeRegistry } from '@cilia/core';
import { NodeFollower } from './follow.js';

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
  readonly #nodes: NodeFollower;

  constructor(options: EncapsulationDriverOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#nodes = new NodeFollower(
      options.registry,
      options.local.name,
      (event) => this.#apply(event),
      (err, event) => this.#log.error({ node: event.node.name, event: event.type, err: err instanceof Error ? err.message : String(err) }, 'encapsulation update failed'),
    );
  }

  /** Sets this node up, then follows the registry; resolves once the nodes known so far are in place. */
  async start(): Promise<void> {
    const { encapsulation, local } = this.#o;
    await encapsulation.setup(local);
    this.#log.info({ mode: encapsulation.mode, overhead: encapsulation.overhead, node: local.name }, 'encapsulation set up');
    await this.#nodes.start();
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
    this.#nodes.stop();
  }

  /** Resolves once every queued call has run. */
  settled(): Promise<void> {
    return this.#nodes.settled();
  }

  async #apply(event: NodeEvent): Promise<void> {
    const { encapsulation } = this.#o;
    if (event.type === 'leave') await encapsulation.deleteNode(event.node.name);
    else await encapsulation.upsertNode(event.node);
    this.#log.debug({ node: event.node.name, event: event.type }, 'encapsulation updated');
  }
}
