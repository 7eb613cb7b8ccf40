import type { KvLease, KvStore, Logger, NodeEvent, NodeInfo, NodeRegistry, Unsubscribe } from '@cilia/core';
import { decodeNode, encodeNode, type RegisteredNode } from './codec.js';

/** What {@link KvNodeRegistry} needs. */
export interface KvNodeRegistryOptions {
  readonly kv: KvStore;
  readonly logger: Logger;
  /** Key prefix of the node keys (`<prefix><name>`). Default `cilium/state/nodes/v1/default/`. */
  readonly prefix?: string;
  /** TTL of the node's lease. Default 15 s. */
  readonly leaseTtlSeconds?: number;
}

/**
 * The `NodeRegistry` over the KvStore, in Cilium's layout: each agent writes its node under
 * `<prefix><name>` attached to its lease and watches the prefix. A node whose key disappears
 * (deleted, or its lease expired) has left. If this node's own key disappears while running
 * (an outage outlived the lease), it registers again under a new lease.
 */
export class KvNodeRegistry implements NodeRegistry {
  readonly #kv: KvStore;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #log: Logger;
  #self?: RegisteredNode;
  readonly #nodes = new Map<string, RegisteredNode>();
  readonly #listeners = new Set<(event: NodeEvent) => void>();
  readonly #onLease = new Set<(lease: KvLease) => void>();
  #lease?: KvLease;
  #unwatch?: Unsubscribe;
  #registering?: Promise<void>;
  #stopped = false;

  constructor(options: KvNodeRegistryOptions) {
    this.#kv = options.kv;
    this.#prefix = options.prefix ?? 'cilium/state/nodes/v1/default/';
    this.#ttl = options.leaseTtlSeconds ?? 15;
    this.#log = options.logger;
  }

  /** Registers `node` (this one) under a new lease, lists the nodes there are and watches for changes. */
  async start(node: NodeInfo): Promise<void> {
    if (this.#unwatch) return;
    // Idempotent up to the watch: a start that failed part-way is simply tried again.
    this.#self ??= { ...node, registeredAt: new Date().toISOString() };
    if (!this.#lease) await this.#register();
    const { entries, revision } = await this.#kv.list(this.#prefix);
    for (const e of entries) this.#put(e.key, e.value);
    this.#unwatch = this.#kv.watch(
      this.#prefix,
      (event) => {
        if (event.type === 'put') this.#put(event.entry.key, event.entry.value);
        else this.#delete(event.key);
      },
      { fromRevision: revision },
    );
  }

  /** Stops watching and revokes the lease: this node's key (and everything else under the lease) goes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    const lease = this.#lease;
    this.#lease = undefined;
    await lease?.revoke();
  }

  /** The node's current lease (keys written under it vanish with the node). */
  lease(): KvLease | undefined {
    return this.#lease;
  }

  /** Called with each new lease (the first, and any taken after the previous one was lost). */
  onLease(listener: (lease: KvLease) => void): Unsubscribe {
    this.#onLease.add(listener);
    return () => this.#onLease.delete(listener);
  }

  local(): NodeInfo | undefined {
    return this.#lease ? this.#self : undefined;
  }

  list(): readonly RegisteredNode[] {
    return [...this.#nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  subscribe(listener: (event: NodeEvent) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #register(): Promise<void> {
    return (this.#registering ??= (async () => {
      const self = this.#self!;
      const lease = await this.#kv.grantLease(this.#ttl);
      try {
        await this.#kv.put(this.#key(self.name), encodeNode(self), { lease: lease.id });
      } catch (err) {
        await lease.revoke().catch(() => undefined);
        throw err;
      }
      if (this.#stopped) {
        await lease.revoke();
        return;
      }
      this.#lease = lease;
      this.#log.info({ node: self.name, lease: lease.id }, 'node registered');
      for (const listener of this.#onLease) listener(lease);
    })().finally(() => (this.#registering = undefined)));
  }

  #put(key: string, value: Uint8Array): void {
    const name = key.slice(this.#prefix.length);
    const node = decodeNode(value);
    if (typeof node === 'string') {
      this.#log.warn({ key, reason: node }, 'ignoring a node key that does not hold a node');
      return;
    }
    if (node.name !== name) {
      this.#log.warn({ key, name: node.name }, 'ignoring a node stored under another name');
      return;
    }
    const before = this.#nodes.get(name);
    this.#nodes.set(name, node);
    if (!before) this.#emit({ type: 'join', node });
    else if (JSON.stringify(before) !== JSON.stringify(node)) this.#emit({ type: 'update', node });
  }

  #delete(key: string): void {
    const name = key.slice(this.#prefix.length);
    const node = this.#nodes.get(name);
    if (!node) return;
    this.#nodes.delete(name);
    this.#emit({ type: 'leave', node });
    if (name === this.#self?.name && !this.#stopped) {
      this.#log.warn({ node: name }, 'this node lost its registration (lease expired?); registering again');
      this.#lease = undefined;
      this.#registerAgain();
    }
  }

  #registerAgain(): void {
    if (this.#stopped) return;
    void this.#register().catch((err: unknown) => {
      this.#log.warn({ err: String(err) }, 'cannot register this node again yet; retrying');
      setTimeout(() => this.#registerAgain(), 2000).unref();
    });
  }

  #emit(event: NodeEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.error({ err }, 'node listener failed');
      }
    }
  }

  #key(name: string): string {
    return `${this.#prefix}${name}`;
  }
}
