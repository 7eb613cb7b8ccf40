import type { Cidr, IpAddress, IpCache, IpCacheDelta, IpCacheEntry, IpCacheSource, Logger, Unsubscribe } from '@cilia/core';
import { containing, parsePrefix } from './prefix.js';

/** Where ipcache batches land: the datapath's LPM map. */
export interface IpCacheMapWriter {
  /** Writes upserts and deletes in one batch. */
  write(upserts: readonly IpCacheEntry[], deletes: readonly Cidr[]): void;
  /** Prefixes currently in the map (for reconciliation after a restart). */
  prefixes(): Cidr[];
}

/** Higher wins when several sources hold an entry for one prefix. */
const PRECEDENCE: Record<IpCacheSource, number> = { local: 5, kvstore: 4, custom: 3, k8s: 2, generated: 1 };

/**
 * The core `IpCache`: each source's entries kept in memory by canonical prefix, the most
 * authoritative one per prefix written to the datapath's LPM map, one batch per {@link apply}.
 * So a policy CIDR that names a pod's /32 does not replace the pod's own entry, and the pod's
 * deletion uncovers it again. Until the datapath is loaded it only remembers; {@link attach}
 * then writes everything, and {@link pruneMap} — after a restart's adoption — removes what the
 * map holds beyond that, entry by entry: never a flush.
 */
export class LocalIpCache implements IpCache {
  /** Per prefix, each source's entry. */
  readonly #held = new Map<Cidr, Map<IpCacheSource, IpCacheEntry>>();
  /** Per prefix, the entry the datapath sees. */
  readonly #entries = new Map<Cidr, IpCacheEntry>();
  readonly #listeners = new Set<(delta: IpCacheDelta) => void>();
  readonly #log: Logger;
  #writer?: IpCacheMapWriter;

  constructor(logger: Logger) {
    this.#log = logger;
  }

  async apply(delta: IpCacheDelta): Promise<void> {
    const upserts = delta.upserts.map((e, i) => ({ ...e, prefix: canonical(e.prefix, `upserts[${i}].prefix`) }));
    const deletes = delta.deletes.map((p, i) => canonical(p, `deletes[${i}]`));
    // Staged on copies: a map write that throws leaves the cache as it was.
    const staged = new Map<Cidr, Map<IpCacheSource, IpCacheEntry>>();
    const stage = (prefix: Cidr) => {
      let held = staged.get(prefix);
      if (!held) staged.set(prefix, (held = new Map(this.#held.get(prefix))));
      return held;
    };
    for (const prefix of deletes) {
      if (!this.#held.has(prefix)) continue;
      const held = stage(prefix);
      if (delta.deleteSource) held.delete(delta.deleteSource);
      else held.clear();
    }
    const upserted = new Set<IpCacheEntry>();
    for (const e of upserts) {
      stage(e.prefix).set(e.source, e);
      upserted.add(e);
    }
    const shown: IpCacheEntry[] = [];
    const gone: Cidr[] = [];
    for (const [prefix, held] of staged) {
      const top = mostAuthoritative(held);
      if (top) {
        // Rewritten when it changed, or when this batch upserted it (an unchanged upsert still reaches subscribers, as before).
        if (top !== this.#entries.get(prefix) || upserted.has(top)) shown.push(top);
      } else if (this.#entries.has(prefix)) gone.push(prefix);
    }
    this.#writer?.write(shown, gone);
    for (const [prefix, held] of staged) {
      if (held.size > 0) this.#held.set(prefix, held);
      else this.#held.delete(prefix);
    }
    for (const prefix of gone) this.#entries.delete(prefix);
    for (const e of shown) this.#entries.set(e.prefix, e);
    const applied = { upserts: shown, deletes: gone };
    for (const listener of this.#listeners) {
      try {
        listener(applied);
      } catch (err) {
        this.#log.error({ err }, 'ipcache listener failed');
      }
    }
  }

  lookup(ip: IpAddress): IpCacheEntry | undefined {
    const address = parsePrefix(ip);
    for (let len = address.length; len >= 0; len--) {
      const hit = this.#entries.get(containing(address, len).cidr);
      if (hit) return hit;
    }
    return undefined;
  }

  list(): readonly IpCacheEntry[] {
    return [...this.#entries.values()];
  }

  subscribe(listener: (delta: IpCacheDelta) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops writing to the map (the agent is stopping; the map keeps its entries). */
  detach(): void {
    this.#writer = undefined;
  }

  /** Connects the datapath map and writes every entry into it (upserts only: nothing is removed here). */
  attach(writer: IpCacheMapWriter): void {
    this.#writer = writer;
    writer.write(this.list(), []);
  }

  /**
   * Deletes map entries this cache does not hold (left by endpoints deleted while the agent was
   * down). Call it once everything that survived a restart has been re-applied.
   */
  pruneMap(): number {
    if (!this.#writer) return 0;
    const stale = this.#writer.prefixes().filter((p) => !this.#entries.has(p));
    if (stale.length > 0) this.#writer.write([], stale);
    return stale.length;
  }
}

function mostAuthoritative(held: ReadonlyMap<IpCacheSource, IpCacheEntry>): IpCacheEntry | undefined {
  let top: IpCacheEntry | undefined;
  for (const e of held.values()) if (!top || PRECEDENCE[e.source] > PRECEDENCE[top.source]) top = e;
  return top;
}

function canonical(prefix: string, field: string): Cidr {
  try {
    return parsePrefix(prefix).cidr;
  } catch (err) {
    throw new TypeError(`${field}: ${(err as Error).message}`);
  }
}
