import type { Identity, IdentityEvent } from '@cilia/core';
import type { PeerMatcher } from './peers.js';

interface CacheEntry {
  readonly matcher: PeerMatcher;
  readonly ids: Set<number>;
  refs: number;
}

/** What one identity event did to the cached selectors: matcher key → added (true) or removed. */
export type SelectionChanges = ReadonlyMap<string, boolean>;

/**
 * One entry per distinct peer selector in use, holding the identities it selects, kept
 * current from identity events. An event re-evaluates selectors only, and reports which of them
 * gained or lost the identity so the engine touches just the entries built from those.
 */
export class SelectorCache {
  readonly #identities = new Map<number, Identity>();
  /**
   * Label key → value → identities, so a selector with an `In` requirement tests only its
   * candidates. Keyed both by the exact key (`k8s:app`) and by `any:<name>` (`any:app`).
   */
  readonly #byLabel = new Map<string, Map<string, Set<number>>>();
  readonly #cidrIds = new Set<number>();
  readonly #entries = new Map<string, CacheEntry>();

  get size(): number {
    return this.#entries.size;
  }

  identity(id: number): Identity | undefined {
    return this.#identities.get(id);
  }

  identities(): IterableIterator<Identity> {
    return this.#identities.values();
  }

  /** Takes a reference on the matcher's entry (creating it) and returns its live identity set. */
  acquire(matcher: PeerMatcher): ReadonlySet<number> {
    let entry = this.#entries.get(matcher.key);
    if (!entry) {
      entry = { matcher, ids: this.#select(matcher), refs: 0 };
      this.#entries.set(matcher.key, entry);
    }
    entry.refs++;
    return entry.ids;
  }

  release(key: string): void {
    const entry = this.#entries.get(key);
    if (entry && --entry.refs <= 0) this.#entries.delete(key);
  }

  /** The identities a matcher selects, from the cache when it is there, else computed (not kept). */
  peek(matcher: PeerMatcher): ReadonlySet<number> {
    return this.#entries.get(matcher.key)?.ids ?? this.#select(matcher);
  }

  /** Live identity set of a cached matcher. */
  ids(key: string): ReadonlySet<number> | undefined {
    return this.#entries.get(key)?.ids;
  }

  /** Applies an identity event to every cached selector; returns the selections it changed. */
  apply(event: IdentityEvent): SelectionChanges {
    const { identity } = event;
    // Identity 0 (reserved:unknown) is the wildcard in map keys: selecting it would select every peer.
    if (identity.id === 0) return new Map();
    const previous = this.#identities.get(identity.id);
    if (previous) this.#unindex(previous);
    if (event.type === 'upsert') {
      this.#identities.set(identity.id, identity);
      this.#index(identity);
    } else {
      this.#identities.delete(identity.id);
    }
    const changes = new Map<string, boolean>();
    for (const [key, entry] of this.#entries) {
      const selected = entry.matcher.staticIds.has(identity.id) || (event.type === 'upsert' && entry.matcher.matches(identity));
      if (selected === entry.ids.has(identity.id)) continue;
      if (selected) entry.ids.add(identity.id);
      else entry.ids.delete(identity.id);
      changes.set(key, selected);
    }
    return changes;
  }

  #select(matcher: PeerMatcher): Set<number> {
    const ids = new Set(matcher.staticIds);
    for (const identity of this.#candidates(matcher)) if (matcher.matches(identity)) ids.add(identity.id);
    return ids;
  }

  *#candidates(matcher: PeerMatcher): Iterable<Identity> {
    if (matcher.cidrOnly) {
      for (const id of this.#cidrIds) yield this.#identities.get(id)!;
      return;
    }
    let narrowest: Set<number>[] | undefined;
    let size = Infinity;
    for (const hint of matcher.indexHints ?? []) {
      const byValue = this.#byLabel.get(hint.key);
      const sets = hint.values.map((v) => byValue?.get(v)).filter((s): s is Set<number> => s !== undefined);
      const n = sets.reduce((sum, s) => sum + s.size, 0);
      if (n < size) [narrowest, size] = [sets, n];
    }
    if (!narrowest) {
      yield* this.#identities.values();
      return;
    }
    const seen = new Set<number>();
    for (const ids of narrowest) {
      for (const id of ids) {
        if (seen.has(id)) continue;
        seen.add(id);
        yield this.#identities.get(id)!;
      }
    }
  }

  /** Both index keys of a label: `k8s:app` and `any:app`. */
  static #indexKeys(key: string): string[] {
    const colon = key.indexOf(':');
    return colon < 0 ? [key, `any:${key}`] : [key, `any:${key.slice(colon + 1)}`];
  }

  #index(identity: Identity): void {
    for (const [label, v] of Object.entries(identity.labels)) {
      if (label.startsWith('cidr:')) this.#cidrIds.add(identity.id);
      for (const k of SelectorCache.#indexKeys(label)) {
        let byValue = this.#byLabel.get(k);
        if (!byValue) this.#byLabel.set(k, (byValue = new Map()));
        let ids = byValue.get(v);
        if (!ids) byValue.set(v, (ids = new Set()));
        ids.add(identity.id);
      }
    }
  }

  #unindex(identity: Identity): void {
    for (const [label, v] of Object.entries(identity.labels)) {
      for (const k of SelectorCache.#indexKeys(label)) {
        const byValue = this.#byLabel.get(k);
        byValue?.get(v)?.delete(identity.id);
        if (byValue?.get(v)?.size === 0) byValue.delete(v);
        if (byValue?.size === 0) this.#byLabel.delete(k);
      }
    }
    this.#cidrIds.delete(identity.id);
  }
}
