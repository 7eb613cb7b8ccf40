import { IdentityRange, type Identity, type KvLease, type KvStore, type Labels, type Logger, type NumericIdentity, type Unsubscribe } from '@cilia/core';
import { IdentityRegistry } from './base.js';
import { IdentityKeys } from './keys.js';
import { labelsKey, parseLabelsKey, type LabelFilter } from './labels.js';
import { INIT_IDENTITY } from './reserved.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What {@link KvIdentityAllocator} needs. */
export interface KvIdentityAllocatorOptions {
  readonly kv: KvStore;
  /** This node's name: the last element of its `value/…/<node>` keys. */
  readonly node: string;
  readonly logger: Logger;
  /** Key prefix; default `cilium/state/identities/v1/`. */
  readonly prefix?: string;
  readonly filter?: LabelFilter;
  /** How long an identity nobody references survives before it is collected. Default 15 min. */
  readonly gcGraceMs?: number;
  /** How often unused identities are looked for. Default 60 s. */
  readonly gcIntervalMs?: number;
  /** TTL of the node's lease. Default 30 s. */
  readonly leaseTtlSeconds?: number;
  /** A store operation slower than this counts as the store being unreachable. Default 5 s. */
  readonly kvTimeoutMs?: number;
  /** How often the node's references are checked and re-created (after an outage). Default 5 s. */
  readonly syncIntervalMs?: number;
}

class KvTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`the KvStore did not answer ${what} within ${ms} ms`);
    this.name = 'KvTimeoutError';
  }
}

interface Held {
  id: number;
  labelsKey: string;
  refs: number;
}

/**
 * Labels → identity with Cilium's numbering and key layout. Cluster identities (256–65535) are
 * shared through the KvStore: a label set's id is found through `value/<labels>/` (any node's
 * reference) or, when new, claimed by a create-only write of `id/<id>`; the node then holds a
 * reference `value/<labels>/<node>` under its lease for as long as any local user does.
 * Allocation and collection of one label set run under a KvStore lock on it, so two agents
 * never mint two ids for one label set. Ids with no reference left are deleted after a grace
 * period. CIDR identities are node-local. When the store cannot be reached, `allocate`
 * answers the reserved `init` identity (and the caller tries again later).
 */
export class KvIdentityAllocator extends IdentityRegistry {
  readonly #kv: KvStore;
  readonly #keys: IdentityKeys;
  readonly #node: string;
  readonly #gcGraceMs: number;
  readonly #gcIntervalMs: number;
  readonly #leaseTtl: number;
  readonly #timeoutMs: number;
  readonly #syncIntervalMs: number;
  /** Label sets this node references, by labels key. */
  readonly #held = new Map<string, Held>();
  readonly #inflight = new Map<string, Promise<number>>();
  readonly #unusedSince = new Map<number, number>();
  #lease?: KvLease;
  #leasePromise?: Promise<KvLease>;
  #unwatch?: Unsubscribe;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #syncing = false;

  constructor(options: KvIdentityAllocatorOptions) {
    super(options.logger, options.filter);
    this.#kv = options.kv;
    this.#keys = new IdentityKeys(options.prefix ?? 'cilium/state/identities/v1/');
    if (!/^[^/\s]+$/.test(options.node)) throw new TypeError(`node: must be a non-empty name without "/" or spaces, got ${JSON.stringify(options.node)}`);
    this.#node = options.node;
    this.#gcGraceMs = options.gcGraceMs ?? 15 * 60_000;
    this.#gcIntervalMs = options.gcIntervalMs ?? 60_000;
    this.#leaseTtl = options.leaseTtlSeconds ?? 30;
    this.#timeoutMs = options.kvTimeoutMs ?? 5_000;
    this.#syncIntervalMs = options.syncIntervalMs ?? 5_000;
  }

  /**
   * Loads the cluster identities and watches them; starts collection and the reference
   * check. An unreachable store does not fail it: the watch and the check catch up later.
   */
  async start(): Promise<void> {
    try {
      await this.#loadAndWatch();
    } catch (err) {
      this.log.warn({ err }, 'KvStore unreachable at start; identities will be loaded when it answers');
    }
    this.#timers.push(setInterval(() => void this.#sync(), this.#syncIntervalMs).unref());
    this.#timers.push(setInterval(() => void this.collectGarbage().catch((err: unknown) => this.log.warn({ err }, 'identity garbage collection failed')), this.#gcIntervalMs).unref());
  }

  /** Stops watching and timers. References stay in the store until the lease lapses. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  async allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }> {
    const prepared = this.prepare(labels);
    if ('reserved' in prepared) return { identity: prepared.reserved, isNew: false };
    const { relevant, key } = prepared;
    const held = this.#held.get(key);
    if (held && this.lookup(held.id) !== undefined) {
      held.refs++;
      return { identity: this.lookup(held.id)!, isNew: false };
    }
    const known = this.idOf(key) !== undefined;
    let id: number;
    try {
      id = await this.#acquire(key);
    } catch (err) {
      this.log.warn({ err: String(err), labels: key }, 'cannot allocate an identity now; answering init');
      return { identity: INIT_IDENTITY, isNew: false };
    }
    const h = this.#held.get(key);
    if (h) h.refs++;
    else this.#held.set(key, { id, labelsKey: key, refs: 1 });
    const identity = this.lookup(id) ?? this.remember({ id, labels: relevant, scope: 'cluster' });
    return { identity, isNew: !known };
  }

  async release(id: NumericIdentity): Promise<boolean> {
    if (id < IdentityRange.clusterMin) return false;
    if (id >= IdentityRange.localMin) return this.releaseLocal(id);
    const held = [...this.#held.values()].find((h) => h.id === id);
    if (!held) return false;
    if (--held.refs > 0) return false;
    this.#held.delete(held.labelsKey);
    try {
      await this.#timed('delete', this.#kv.delete(this.#keys.value(held.labelsKey, this.#node)));
    } catch (err) {
      // The reference lapses with the lease anyway; the next check removes it sooner.
      this.log.warn({ err: String(err), id }, 'cannot drop the node reference now; will retry');
    }
    return true;
  }

  /** Local references to `id` (0 when this node does not use it). */
  references(id: NumericIdentity): number {
    if (id >= IdentityRange.localMin) return this.localReferences(id);
    return [...this.#held.values()].find((h) => h.id === id)?.refs ?? 0;
  }

  /**
   * Deletes `id/<id>` keys that no node has referenced for the grace period. Runs under the
   * label set's lock and looks again there, so an allocation racing it keeps its id.
   */
  async collectGarbage(now = Date.now()): Promise<number[]> {
    const [ids, values] = await Promise.all([this.#timed('list', this.#kv.list(this.#keys.ids)), this.#timed('list', this.#kv.list(this.#keys.values))]);
    const referenced = new Set<number>();
    for (const e of values.entries) referenced.add(Number(decoder.decode(e.value)));
    const collected: number[] = [];
    const present = new Set<number>();
    for (const e of ids.entries) {
      const id = this.#keys.parseId(e.key);
      if (id === undefined) continue;
      present.add(id);
      if (referenced.has(id)) {
        this.#unusedSince.delete(id);
        continue;
      }
      const since = this.#unusedSince.get(id);
      if (since === undefined) {
        this.#unusedSince.set(id, now);
        continue;
      }
      if (now - since < this.#gcGraceMs) continue;
      const key = decoder.decode(e.value);
      const unlock = await this.#timed('lock', this.#kv.lock(this.#keys.lock(key)));
      try {
        const still = await this.#timed('list', this.#kv.list(this.#keys.valuesOf(key)));
        if (still.entries.length === 0 && (await this.#kv.delete(this.#keys.id(id)))) {
          collected.push(id);
          this.forget(id);
        }
      } finally {
        await unlock();
      }
      this.#unusedSince.delete(id);
    }
    for (const id of this.#unusedSince.keys()) if (!present.has(id)) this.#unusedSince.delete(id);
    if (collected.length > 0) this.log.info({ ids: collected }, 'collected unused identities');
    return collected;
  }

  async #loadAndWatch(): Promise<void> {
    if (this.#unwatch) return;
    const { entries, revision } = await this.#timed('list', this.#kv.list(this.#keys.ids));
    for (const e of entries) this.#learn(e.key, e.value);
    this.#unwatch = this.#kv.watch(
      this.#keys.ids,
      (event) => {
        if (event.type === 'put') this.#learn(event.entry.key, event.entry.value);
        else {
          const id = this.#keys.parseId(event.key);
          if (id !== undefined && ![...this.#held.values()].some((h) => h.id === id)) this.forget(id);
        }
      },
      { fromRevision: revision },
    );
  }

  /** Finds or claims the id of a label set and writes this node's reference to it (one run per label set at a time). */
  #acquire(key: string): Promise<number> {
    let run = this.#inflight.get(key);
    if (!run) {
      run = this.#acquireLocked(key).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, run);
    }
    return this.#timed('an identity allocation', run).catch((err: unknown) => {
      // Completed after its caller gave up: drop the reference nobody holds.
      run.then(
        () => {
          if (!this.#held.has(key)) void this.#kv.delete(this.#keys.value(key, this.#node)).catch(() => undefined);
        },
        () => undefined,
      );
      throw err;
    });
  }

  async #acquireLocked(key: string): Promise<number> {
    if (!this.#unwatch) await this.#loadAndWatch();
    const lease = await this.#ensureLease();
    const unlock = await this.#kv.lock(this.#keys.lock(key));
    try {
      const refs = await this.#kv.list(this.#keys.valuesOf(key));
      let id = refs.entries.map((e) => Number(decoder.decode(e.value))).find((n) => Number.isInteger(n) && n >= IdentityRange.clusterMin);
      if (id === undefined) id = await this.#existingMaster(key);
      id ??= await this.#claim(key);
      await this.#putReference(key, id, lease);
      this.#unusedSince.delete(id);
      return id;
    } finally {
      await unlock();
    }
  }

  /** An `id/<id>` left for this label set (every reference lapsed, not yet collected). */
  async #existingMaster(key: string): Promise<number | undefined> {
    const cached = this.idOf(key);
    if (cached === undefined) return undefined;
    const entry = await this.#kv.get(this.#keys.id(cached));
    return entry && decoder.decode(entry.value) === key ? cached : undefined;
  }

  /** Claims a free id with a create-only write; a taken id (another agent won it) means try another. */
  async #claim(key: string): Promise<number> {
    const span = IdentityRange.clusterMax - IdentityRange.clusterMin + 1;
    const start = IdentityRange.clusterMin + Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const id = IdentityRange.clusterMin + ((start - IdentityRange.clusterMin + i) % span);
      if (this.lookup(id) !== undefined) continue;
      if (await this.#kv.create(this.#keys.id(id), encoder.encode(key))) {
        this.#learn(this.#keys.id(id), encoder.encode(key));
        return id;
      }
    }
    throw new Error(`no cluster identity left (all ${span} ids in ${IdentityRange.clusterMin}-${IdentityRange.clusterMax} are taken)`);
  }

  async #putReference(key: string, id: number, lease: KvLease): Promise<void> {
    try {
      await this.#kv.put(this.#keys.value(key, this.#node), encoder.encode(String(id)), { lease: lease.id });
    } catch (err) {
      // The lease may have lapsed while the store was away: a fresh one, once.
      this.#lease = undefined;
      const fresh = await this.#ensureLease();
      if (fresh.id === lease.id) throw err;
      await this.#kv.put(this.#keys.value(key, this.#node), encoder.encode(String(id)), { lease: fresh.id });
    }
  }

  #ensureLease(): Promise<KvLease> {
    if (this.#lease) return Promise.resolve(this.#lease);
    this.#leasePromise ??= this.#kv
      .grantLease(this.#leaseTtl)
      .then((lease) => (this.#lease = lease))
      .finally(() => (this.#leasePromise = undefined));
    return this.#leasePromise;
  }

  /**
   * After an outage or a restart: every label set this node holds gets its reference back
   * (under the current lease), references of sets it no longer holds (a release that could
   * not reach the store, a previous run's) are dropped, and the watch is (re)established.
   */
  async #sync(): Promise<void> {
    if (this.#syncing || this.#stopped) return;
    this.#syncing = true;
    try {
      if (!this.#unwatch) await this.#loadAndWatch();
      const own = new Map<string, number | undefined>();
      for (const e of (await this.#timed('list', this.#kv.list(this.#keys.values))).entries) {
        const parsed = this.#keys.parseValue(e.key);
        if (parsed?.node === this.#node) own.set(parsed.labelsKey, e.lease);
      }
      for (const held of [...this.#held.values()]) {
        const lease = own.get(held.labelsKey);
        if (own.has(held.labelsKey) && (lease === undefined || lease === this.#lease?.id)) continue;
        if (!own.has(held.labelsKey) && !(await this.#timed('get', this.#kv.get(this.#keys.id(held.id))))) {
          // Collected while this node could not hold it: claim it back if still free.
          const ok = await this.#timed('create', this.#kv.create(this.#keys.id(held.id), encoder.encode(held.labelsKey)));
          if (!ok) this.log.error({ id: held.id, labels: held.labelsKey }, 'identity was collected and reused while the store was unreachable');
        }
        await this.#timed('put', this.#putReference(held.labelsKey, held.id, await this.#ensureLease()));
        this.log.info({ id: held.id }, 'node reference to identity restored');
      }
      for (const key of own.keys()) {
        if (this.#held.has(key) || this.#inflight.has(key)) continue;
        await this.#dropStale(key);
      }
    } catch (err) {
      this.log.debug({ err: String(err) }, 'identity sync: KvStore not reachable');
    } finally {
      this.#syncing = false;
    }
  }

  /** Deletes this node's reference to a label set nobody here holds, under the set's lock. */
  async #dropStale(key: string): Promise<void> {
    const unlock = await this.#timed('lock', this.#kv.lock(this.#keys.lock(key)));
    try {
      // An allocation that started meanwhile waits for this lock: leave its reference alone.
      if (this.#held.has(key) || this.#inflight.has(key)) return;
      await this.#timed('delete', this.#kv.delete(this.#keys.value(key, this.#node)));
      this.log.info({ labels: key }, 'dropped a node reference no local user holds');
    } finally {
      await unlock();
    }
  }

  #learn(key: string, value: Uint8Array): void {
    const id = this.#keys.parseId(key);
    if (id === undefined || id < IdentityRange.clusterMin || id > IdentityRange.clusterMax) return;
    const text = decoder.decode(value);
    const labels = parseLabelsKey(text);
    if (!labels) {
      this.log.warn({ key }, 'ignoring an identity whose labels cannot be parsed');
      return;
    }
    const existing = this.lookup(id);
    if (existing && labelsKey(existing.labels) === text) return;
    this.remember({ id, labels, scope: 'cluster' });
  }

  #timed<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KvTimeoutError(what, this.#timeoutMs)), this.#timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

