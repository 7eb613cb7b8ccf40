import type { KvEntry, KvEvent, KvLease, KvStore, Unsubscribe } from '@cilia/core';

/**
 * A tiny in-memory KvStore for logic tests of the allocator only (not a backend): every call
 * yields to the event loop first, so concurrent callers interleave; `down` makes every call fail.
 */
export class MemoryKv implements KvStore {
  readonly entries = new Map<string, KvEntry>();
  readonly leases = new Set<number>();
  revision = 0;
  down = false;
  #watchers = new Set<{ prefix: string; fn: (e: KvEvent) => void }>();
  #locks = new Map<string, Promise<void>>();
  #nextLease = 1;

  async #tick(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.down) throw new Error('kvstore unreachable');
  }
  #emit(e: KvEvent, key: string): void {
    for (const w of this.#watchers) if (key.startsWith(w.prefix)) w.fn(e);
  }
  #write(key: string, value: Uint8Array, lease?: number): number {
    if (lease !== undefined && !this.leases.has(lease)) throw new Error(`lease ${lease} not found`);
    const rev = ++this.revision;
    const prev = this.entries.get(key);
    const entry: KvEntry = { key, value, modRevision: rev, createRevision: prev?.createRevision ?? rev, ...(lease !== undefined ? { lease } : {}) };
    this.entries.set(key, entry);
    this.#emit({ type: 'put', entry, revision: rev }, key);
    return rev;
  }
  async get(key: string) {
    await this.#tick();
    return this.entries.get(key);
  }
  async list(prefix: string) {
    await this.#tick();
    return { entries: [...this.entries.values()].filter((e) => e.key.startsWith(prefix)), revision: this.revision };
  }
  async put(key: string, value: Uint8Array, options?: { lease?: number }) {
    await this.#tick();
    return this.#write(key, value, options?.lease);
  }
  async create(key: string, value: Uint8Array, options?: { lease?: number }) {
    await this.#tick();
    if (this.entries.has(key)) return false;
    this.#write(key, value, options?.lease);
    return true;
  }
  async compareAndSwap(key: string, value: Uint8Array, expected: number, options?: { lease?: number }) {
    await this.#tick();
    if ((this.entries.get(key)?.modRevision ?? 0) !== expected) return false;
    this.#write(key, value, options?.lease);
    return true;
  }
  async delete(key: string) {
    await this.#tick();
    return this.#remove(key);
  }
  #remove(key: string): boolean {
    if (!this.entries.delete(key)) return false;
    this.#emit({ type: 'delete', key, revision: ++this.revision }, key);
    return true;
  }
  watch(prefix: string, fn: (e: KvEvent) => void): Unsubscribe {
    const w = { prefix, fn };
    this.#watchers.add(w);
    return () => this.#watchers.delete(w);
  }
  async grantLease(ttlSeconds: number): Promise<KvLease> {
    await this.#tick();
    const id = this.#nextLease++;
    this.leases.add(id);
    return { id, ttlSeconds, revoke: async () => this.expire(id) };
  }
  /** The lease lapses: its keys go. */
  expire(id: number): void {
    this.leases.delete(id);
    for (const e of [...this.entries.values()]) if (e.lease === id) this.#remove(e.key);
  }
  async lock(key: string): Promise<() => Promise<void>> {
    await this.#tick();
    for (;;) {
      const held = this.#locks.get(key);
      if (!held) break;
      await held;
    }
    let release!: () => void;
    this.#locks.set(key, new Promise<void>((r) => (release = r)));
    return async () => {
      this.#locks.delete(key);
      release();
    };
  }
}
