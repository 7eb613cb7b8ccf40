import type { Cidr, IpAddress, IpCache, IpCacheDelta, IpCacheEntry, Logger, Unsubscribe } from '@cilia/core';
import { containing, parsePrefix } from './prefix.js';

/** Where ipcache batches land: the datapath's LPM map. */
export interface IpCacheMapWriter {
  /** Writes upserts and deletes in one batch. */
  write(upserts: readonly IpCacheEntry[], deletes: readonly Cidr[]): void;
  /** Prefixes currently in the map (for reconciliation after a restart). */
  prefixes(): Cidr[];
}

/**
 * The core `IpCache`: entries kept in memory by canonical prefix and written to the
 * datapath's LPM map in one batch per {@link apply}. Until the datapath is loaded it only
 * remembers; {@link attach} then writes everything, and {@link pruneMap} — after a restart's
 * adoption — removes what the map holds beyond that, entry by entry: never a flush.
 */
export class LocalIpCache implements IpCache {
  readonly #entries = new Map<Cidr, IpCacheEntry>();
  readonly #listeners = new Set<(delta: IpCacheDelta) => void>();
  readonly #log: Logger;
  #writer?: IpCacheMapWriter;

  constructor(logger: Logger) {
    this.#log = logger;
  }

  async apply(delta: IpCacheDelta): Promise<void> {
    const upserts = delta.upserts.map((e, i) => ({ ...e, prefix: canonical(e.prefix, `upserts[${i}].prefix`) }));
    const deletes = delta.deletes.map((p, i) => canonical(p, `deletes[${i}]`)).filter((p) => this.#entries.has(p));
    this.#writer?.write(upserts, deletes);
    for (const p of deletes) this.#entries.delete(p);
    for (const e of upserts) this.#entries.set(e.prefix, e);
    const applied = { upserts, deletes };
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

function canonical(prefix: string, field: string): Cidr {
  try {
    return parsePrefix(prefix).cidr;
  } catch (err) {
    throw new TypeError(`${field}: ${(err as Error).message}`);
  }
}
