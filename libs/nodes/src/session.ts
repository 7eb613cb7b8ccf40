import type { Logger, NodeInfo } from '@cilia/core';
import type { KvIpCacheSync } from './ipcache-sync.js';
import type { KvNodeRegistry } from './registry.js';

/** What {@link NodeSession} runs. */
export interface NodeSessionOptions {
  readonly registry: KvNodeRegistry;
  readonly sync: KvIpCacheSync;
  readonly node: NodeInfo;
  readonly logger: Logger;
  /** How long start() waits for the first attempt before going on in the background. Default 5 s. */
  readonly firstWaitMs?: number;
  /** Pause between attempts. Default 2 s. */
  readonly retryMs?: number;
}

/**
 * Registration and ipcache sync, started so that an unreachable KvStore does not hold the
 * agent back: the agent forwards with what it has, and the node joins once the store answers.
 */
export class NodeSession {
  readonly #o: NodeSessionOptions;
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #ready = false;
  #stopped = false;
  #lastError?: string;

  constructor(options: NodeSessionOptions) {
    this.#o = options;
  }

  /** Resolves once registered and synced, or after `firstWaitMs` with the attempts going on. */
  async start(): Promise<void> {
    const first = this.#attempt();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#o.firstWaitMs ?? 5_000)));
    await Promise.race([first, waited]);
    clearTimeout(timer);
    if (!this.#ready) this.#o.logger.warn({ err: this.#lastError }, 'node not registered yet (KvStore unreachable?); going on and retrying in the background');
  }

  /** What keeps the node from being registered, if anything (for `cilia status`). */
  problems(): string[] {
    if (this.#ready || this.#stopped) return [];
    return [`node ${this.#o.node.name} is not registered in the KvStore yet${this.#lastError ? `: ${this.#lastError}` : ''}`];
  }

  /** Stops retrying and syncing, and revokes the node's lease (its keys go with it). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
    this.#o.sync.stop();
    await this.#o.sync.settled();
    await this.#o.registry.stop();
  }

  #attempt(): Promise<void> {
    this.#running = (async () => {
      try {
        await this.#o.registry.start(this.#o.node);
        await this.#o.sync.start();
        this.#ready = true;
        this.#lastError = undefined;
      } catch (err) {
        this.#lastError = err instanceof Error ? err.message : String(err);
        if (this.#stopped) return;
        this.#o.logger.debug({ err: this.#lastError }, 'node registration failed; retrying');
        this.#timer = setTimeout(() => void this.#attempt(), this.#o.retryMs ?? 2_000);
        this.#timer.unref();
      }
    })();
    return this.#running;
  }
}
