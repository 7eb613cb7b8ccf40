import type { Cidr, IpAddress, IpCache, IpCacheDelta, IpCacheEntry, Unsubscribe } from '@cilia/core';

/**
 * The ipcache of policy's CIDR identities, handed to the engine before the real ipcache can be.
 *
 * Why: the datapath (which provides the IpCache) starts after policy, so that endpoints are
 * adopted with their full policy; a plugin dependency from policy on the IpCache would make
 * that a cycle. So the engine writes here; entries are held until {@link connect} hands over
 * the real ipcache, which then gets them all, and every later batch goes straight through.
 */
export class DeferredIpCache implements IpCache {
  readonly #held = new Map<Cidr, IpCacheEntry>();
  readonly #listeners = new Set<(delta: IpCacheDelta) => void>();
  #target?: IpCache;

  async apply(delta: IpCacheDelta): Promise<void> {
    for (const prefix of delta.deletes) this.#held.delete(prefix);
    for (const entry of delta.upserts) this.#held.set(entry.prefix, entry);
    for (const listener of this.#listeners) listener(delta);
    await this.#target?.apply(delta);
  }

  lookup(ip: IpAddress): IpCacheEntry | undefined {
    return this.#target?.lookup(ip) ?? this.#held.get(ip);
  }

  /** The entries policy put here (not the whole ipcache). */
  list(): readonly IpCacheEntry[] {
    return [...this.#held.values()];
  }

  subscribe(listener: (delta: IpCacheDelta) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** From now on batches go to `target`, which first gets everything held so far. */
  async connect(target: IpCache): Promise<void> {
    this.#target = target;
    if (this.#held.size > 0) await target.apply({ upserts: [...this.#held.values()], deletes: [] });
  }

  /** Holds batches again (the real ipcache is going away); what it has stays there. */
  disconnect(): void {
    this.#target = undefined;
  }
}
