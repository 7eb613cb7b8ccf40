import type { Cidr, IpCache, IpCacheDelta, IpCacheEntry, KvLease, KvStore, Logger, Unsubscribe } from '@cilia/core';
import { decodeIpEntry, encodeIpEntry, ipKeySuffix } from './codec.js';

/** What {@link KvIpCacheSync} needs. */
export interface KvIpCacheSyncOptions {
  readonly kv: KvStore;
  readonly ipcache: IpCache;
  /** This node's name, written with its entries. */
  readonly node: string;
  /** The underlay address other nodes tunnel to for this node's entries. */
  readonly tunnelEndpoint?: string;
  /** The node's lease: its entries vanish with it. */
  readonly lease: () => KvLease | undefined;
  readonly logger: Logger;
  /** Key prefix of the entries (`<prefix><ip>`). Default `cilium/state/ip/v1/default/`. */
  readonly prefix?: string;
  /** How long remote changes are gathered into one ipcache batch. Default 20 ms. */
  readonly batchWindowMs?: number;
}

/**
 * Shares the ipcache through the KvStore in Cilium's layout (`ip/v1/<cluster>/<ip>`):
 * this node's `local` entries are published under its lease, and the entries other nodes
 * publish are applied to the local ipcache as `kvstore` entries — gathered into batches over a
 * short window. A local entry wins over a remote one for the same prefix; the remote
 * one comes back if the local one goes. A node that leaves takes its entries with its lease,
 * and the watch sees the deletes.
 */
export class KvIpCacheSync {
  readonly #o: KvIpCacheSyncOptions;
  readonly #prefix: string;
  readonly #log: Logger;
  /** Prefixes this node published (its own `local` entries). */
  readonly #published = new Set<Cidr>();
  /** Other nodes' entries, by prefix, whether or not a local entry shadows them. */
  readonly #remote = new Map<Cidr, IpCacheEntry>();
  /** Store keys of the remote entries, to find the prefix of a deleted key. */
  readonly #keyPrefix = new Map<string, Cidr>();
  #pending: { upserts: Map<Cidr, IpCacheEntry>; deletes: Set<Cidr> } | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #unwatch?: Unsubscribe;
  #unsubscribe?: Unsubscribe;
  /** Store writes under way, chained per prefix. */
  readonly #writes = new Map<Cidr, Promise<unknown>>();
  readonly #batchWindowMs: number;

  constructor(options: KvIpCacheSyncOptions) {
    this.#o = options;
    this.#prefix = options.prefix ?? 'cilium/state/ip/v1/default/';
    this.#log = options.logger;
    this.#batchWindowMs = options.batchWindowMs ?? 20;
  }

  /**
   * Publishes the local entries (dropping entries a previous run of this node left that are no
   * longer local), applies the remote ones, and follows both from then on.
   */
  async start(): Promise<void> {
    if (this.#unwatch) return;
    const { entries, revision } = await this.#o.kv.list(this.#prefix);
    // No await between reading the local entries and subscribing: no local change is missed.
    this.#unsubscribe ??= this.#o.ipcache.subscribe((delta) => this.#onLocal(delta));
    const local = new Set(this.#localEntries().map((e) => e.prefix));
    for (const e of entries) {
      const entry = decodeIpEntry(e.value);
      if (typeof entry === 'string') continue;
      if (entry.node === this.#o.node) {
        if (!local.has(entry.prefix)) await this.#o.kv.delete(e.key);
      } else this.#onRemotePut(e.key, entry);
    }
    await this.republish();
    this.#unwatch = this.#o.kv.watch(
      this.#prefix,
      (event) => {
        if (event.type === 'delete') return this.#onRemoteDelete(event.key);
        const entry = decodeIpEntry(event.entry.value);
        if (typeof entry === 'string') this.#log.warn({ key: event.entry.key, reason: entry }, 'ignoring an ipcache key that does not hold an entry');
        else if (entry.node !== this.#o.node) this.#onRemotePut(event.entry.key, entry);
        // This node took the key over: whatever another node had there is gone from the store.
        else this.#onRemoteDelete(event.entry.key);
      },
      { fromRevision: revision },
    );
    await this.settled();
  }

  /** Stops following; what was published stays until the lease goes. */
  stop(): void {
    this.#unwatch?.();
    this.#unsubscribe?.();
    this.#unwatch = this.#unsubscribe = undefined;
  }

  /** (Re)writes every local entry under the current lease (after a new lease was taken). */
  async republish(): Promise<void> {
    await Promise.all(this.#localEntries().map((e) => this.#publish(e)));
  }

  /** Resolves once queued store writes and ipcache batches are done. */
  async settled(): Promise<void> {
    while (this.#writes.size > 0) await Promise.all(this.#writes.values());
    await this.#flushing;
  }

  #localEntries(): IpCacheEntry[] {
    return this.#o.ipcache.list().filter((e) => e.source === 'local');
  }

  #onLocal(delta: IpCacheDelta): void {
    for (const e of delta.upserts) if (e.source === 'local') void this.#publish(e);
    for (const prefix of delta.deletes) {
      if (!this.#published.delete(prefix)) continue;
      this.#queueWrite(() => this.#withdraw(prefix), prefix);
      // A remote entry the local one shadowed takes the prefix back.
      const remote = this.#remote.get(prefix);
      if (remote) this.#queue(remote, undefined);
    }
  }

  #publish(entry: IpCacheEntry): Promise<unknown> {
    this.#published.add(entry.prefix);
    return this.#queueWrite(() => {
      const lease = this.#o.lease();
      return this.#o.kv.put(this.#key(entry.prefix), encodeIpEntry(entry, this.#o.node, this.#o.tunnelEndpoint), lease ? { lease: lease.id } : {});
    }, entry.prefix);
  }

  /** Deletes this node's key for `prefix`, unless another node has written it since (one key per IP: last writer wins). */
  async #withdraw(prefix: Cidr): Promise<void> {
    const key = this.#key(prefix);
    const current = await this.#o.kv.get(key);
    if (!current) return;
    const entry = decodeIpEntry(current.value);
    if (typeof entry !== 'string' && entry.node !== this.#o.node) return;
    await this.#o.kv.delete(key);
  }

  /** Writes of one prefix run one after another, so a delete never overtakes the put before it. */
  #queueWrite(write: () => Promise<unknown>, prefix: Cidr): Promise<unknown> {
    const next = (this.#writes.get(prefix) ?? Promise.resolve())
      .then(write)
      .catch((err: unknown) => this.#log.warn({ err: String(err), prefix }, 'cannot write an ipcache entry to the KvStore'));
    this.#writes.set(prefix, next);
    void next.then(() => {
      if (this.#writes.get(prefix) === next) this.#writes.delete(prefix);
    });
    return next;
  }

  #onRemotePut(key: string, entry: IpCacheEntry): void {
    const previous = this.#keyPrefix.get(key);
    if (previous && previous !== entry.prefix) this.#onRemoteDelete(key);
    this.#keyPrefix.set(key, entry.prefix);
    this.#remote.set(entry.prefix, entry);
    if (!this.#isLocal(entry.prefix)) this.#queue(entry, undefined);
  }

  #onRemoteDelete(key: string): void {
    const prefix = this.#keyPrefix.get(key);
    if (!prefix) return;
    this.#keyPrefix.delete(key);
    this.#remote.delete(prefix);
    if (!this.#isLocal(prefix)) this.#queue(undefined, prefix);
  }


  #isLocal(prefix: Cidr): boolean {
    if (this.#published.has(prefix)) return true;
    const ip = prefix.slice(0, prefix.lastIndexOf('/'));
    // lookup() is a longest-prefix match: only an entry for exactly this prefix counts.
    const hit = this.#o.ipcache.lookup(ip);
    if (hit?.prefix === prefix) return hit.source === 'local';
    // No host entry is shadowed by a longer one; a shorter prefix may be, so look at them all.
    if (prefix.endsWith('/32') || prefix.endsWith('/128')) return false;
    return this.#o.ipcache.list().some((e) => e.prefix === prefix && e.source === 'local');
  }

  /** Gathers remote changes into one ipcache batch per window. */
  #queue(upsert: IpCacheEntry | undefined, remove: Cidr | undefined): void {
    if (!this.#pending) {
      this.#pending = { upserts: new Map(), deletes: new Set() };
      this.#flushing = this.#flushing.then(() => new Promise<void>((resolve) => setTimeout(resolve, this.#batchWindowMs))).then(() => this.#flush());
    }
    if (upsert) {
      this.#pending.deletes.delete(upsert.prefix);
      this.#pending.upserts.set(upsert.prefix, upsert);
    }
    if (remove) {
      this.#pending.upserts.delete(remove);
      this.#pending.deletes.add(remove);
    }
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = undefined;
    if (!batch) return;
    // Re-check against the cache at apply time: a local entry may have appeared meanwhile.
    const sources = new Map(this.#o.ipcache.list().map((e) => [e.prefix, e.source]));
    const upserts = [...batch.upserts.values()].filter((e) => !this.#published.has(e.prefix) && sources.get(e.prefix) !== 'local');
    const deletes = [...batch.deletes].filter((p) => !this.#published.has(p) && sources.get(p) === 'kvstore');
    if (upserts.length === 0 && deletes.length === 0) return;
    try {
      await this.#o.ipcache.apply({ upserts, deletes, deleteSource: 'kvstore' });
    } catch (err) {
      this.#log.error({ err, upserts: upserts.length, deletes: deletes.length }, 'cannot apply remote ipcache entries');
    }
  }

  #key(prefix: Cidr): string {
    return `${this.#prefix}${ipKeySuffix(prefix)}`;
  }
}
