import { IdentityRange, type Cidr, type Identity, type IdentityAllocator, type IdentityEvent, type KvLease, type KvStore, type Labels, type Logger, type NumericIdentity, type Unsubscribe } from '@cilia/core';
import { IdentityKeys } from './keys.js';
import { checkEncodable, labelFilter, labelsKey, NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX, NAMESPACE_NAME_LABEL, parseLabelsKey, type LabelFilter } from './labels.js';
import { INIT_IDENTITY, RESERVED_IDENTITIES, reservedFor } from './reserved.js';

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
export class KvIdentityAllocator implements IdentityAllocator {
  readonly #kv: KvStore;
  readonly #keys: IdentityKeys;
  readonly #node: string;
  readonly #log: Logger;
  readonly #filter: LabelFilter;
  readonly #gcGraceMs: number;
  readonly #gcIntervalMs: number;
  readonly #leaseTtl: number;
  readonly #timeoutMs: number;
  readonly #syncIntervalMs: number;
  /** Every identity known: reserved, cluster (from the store), local. */
  readonly #byId = new Map<number, Identity>();
  readonly #byKey = new Map<string, number>();
  /** Label sets this node references, by labels key. */
  readonly #held = new Map<string, Held>();
  readonly #inflight = new Map<string, Promise<number>>();
  readonly #localRefs = new Map<number, number>();
  readonly #listeners = new Set<(event: IdentityEvent) => void>();
  readonly #unusedSince = new Map<number, number>();
  readonly #namespaceLabels = new Map<string, Labels>();
  #lease?: KvLease;
  #leasePromise?: Promise<KvLease>;
  #unwatch?: Unsubscribe;
  #timers: NodeJS.Timeout[] = [];
  #nextLocal: number = IdentityRange.localMin;
  #stopped = false;
  #syncing = false;

  constructor(options: KvIdentityAllocatorOptions) {
    this.#kv = options.kv;
    this.#keys = new IdentityKeys(options.prefix ?? 'cilium/state/identities/v1/');
    if (!/^[^/\s]+$/.test(options.node)) throw new TypeError(`node: must be a non-empty name without "/" or spaces, got ${JSON.stringify(options.node)}`);
    this.#node = options.node;
    this.#log = options.logger;
    this.#filter = options.filter ?? labelFilter();
    this.#gcGraceMs = options.gcGraceMs ?? 15 * 60_000;
    this.#gcIntervalMs = options.gcIntervalMs ?? 60_000;
    this.#leaseTtl = options.leaseTtlSeconds ?? 30;
    this.#timeoutMs = options.kvTimeoutMs ?? 5_000;
    this.#syncIntervalMs = options.syncIntervalMs ?? 5_000;
    for (const r of RESERVED_IDENTITIES) this.#remember(r);
  }

  /**
   * Loads the cluster identities and watches them; starts collection and the reference
   * check. An unreachable store does not fail it: the watch and the check catch up later.
   */
  async start(): Promise<void> {
    try {
      await this.#loadAndWatch();
    } catch (err) {
      this.#log.warn({ err }, 'KvStore unreachable at start; identities will be loaded when it answers');
    }
    this.#timers.push(setInterval(() => void this.#sync(), this.#syncIntervalMs).unref());
    this.#timers.push(setInterval(() => void this.collectGarbage().catch((err: unknown) => this.#log.warn({ err }, 'identity garbage collection failed')), this.#gcIntervalMs).unref());
  }

  /** Stops watching and timers. References stay in the store until the lease lapses. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Sets the labels of a namespace; pods in it get them as `k8s:io.cilium.k8s.namespace.labels.*`. */
  setNamespaceLabels(namespace: string, labels: Labels | undefined): void {
    if (labels) this.#namespaceLabels.set(namespace, { ...labels });
    else this.#namespaceLabels.delete(namespace);
  }

  /** The identity-relevant labels of `labels`: namespace labels added, then the filter. */
  identityLabels(labels: Labels): Labels {
    const ns = labels[NAMESPACE_LABEL];
    const nsLabels = ns === undefined ? undefined : this.#namespaceLabels.get(ns);
    const all: Record<string, string> = { ...labels };
    for (const [k, v] of Object.entries(nsLabels ?? {})) all[`${NAMESPACE_LABELS_PREFIX}${k}`] ??= v;
    // Kubernetes gives every namespace this label; carrying it whatever the source of the
    // endpoint (manifest, API, CNI) keeps equal label sets on one identity.
    if (ns !== undefined) all[`${NAMESPACE_LABELS_PREFIX}${NAMESPACE_NAME_LABEL}`] ??= ns;
    return this.#filter.apply(all);
  }

  async allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }> {
    const relevant = this.identityLabels(labels);
    checkEncodable(relevant);
    const reserved = reservedFor(relevant);
    if (reserved) return { identity: reserved, isNew: false };
    const key = labelsKey(relevant);
    const held = this.#held.get(key);
    if (held && this.#byId.has(held.id)) {
      held.refs++;
      return { identity: this.#byId.get(held.id)!, isNew: false };
    }
    const known = this.#byKey.has(key);
    let id: number;
    try {
      id = await this.#acquire(key);
    } catch (err) {
      this.#log.warn({ err: String(err), labels: key }, 'cannot allocate an identity now; answering init');
      return { identity: INIT_IDENTITY, isNew: false };
    }
    const h = this.#held.get(key);
    if (h) h.refs++;
    else this.#held.set(key, { id, labelsKey: key, refs: 1 });
    const identity = this.#byId.get(id) ?? this.#remember({ id, labels: relevant, scope: 'cluster' });
    return { identity, isNew: !known };
  }

  async release(id: NumericIdentity): Promise<boolean> {
    if (id < IdentityRange.clusterMin) return false;
    if (id >= IdentityRange.localMin) return this.#releaseLocal(id);
    const held = [...this.#held.values()].find((h) => h.id === id);
    if (!held) return false;
    if (--held.refs > 0) return false;
    this.#held.delete(held.labelsKey);
    try {
      await this.#timed('delete', this.#kv.delete(this.#keys.value(held.labelsKey, this.#node)));
    } catch (err) {
      // The reference lapses with the lease anyway; the next check removes it sooner.
      this.#log.warn({ err: String(err), id }, 'cannot drop the node reference now; will retry');
    }
    return true;
  }

  async allocateCidr(cidr: Cidr): Promise<Identity> {
    if (!/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(cidr)) throw new TypeError(`cidr: expected a prefix like 10.0.0.0/8, got ${JSON.stringify(cidr)}`);
    const labels = { [`cidr:${cidr}`]: '', 'reserved:world': '' };
    const key = labelsKey(labels);
    let id = this.#byKey.get(key);
    if (id === undefined) {
      while (this.#byId.has(this.#nextLocal)) this.#nextLocal++;
      id = this.#nextLocal++;
      this.#remember({ id, labels, scope: 'local' });
    }
    this.#localRefs.set(id, (this.#localRefs.get(id) ?? 0) + 1);
    return this.#byId.get(id)!;
  }

  lookup(id: NumericIdentity): Identity | undefined {
    return this.#byId.get(id);
  }

  lookupByLabels(labels: Labels): Identity | undefined {
    const relevant = this.identityLabels(labels);
    const reserved = reservedFor(relevant);
    if (reserved) return reserved;
    const id = this.#byKey.get(labelsKey(relevant));
    return id === undefined ? undefined : this.#byId.get(id);
  }

  list(): readonly Identity[] {
    return [...this.#byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Local references to `id` (0 when this node does not use it). */
  references(id: NumericIdentity): number {
    if (id >= IdentityRange.localMin) return this.#localRefs.get(id) ?? 0;
    return [...this.#held.values()].find((h) => h.id === id)?.refs ?? 0;
  }

  watch(listener: (event: IdentityEvent) => void, options: { replay?: boolean } = {}): Unsubscribe {
    if (options.replay) for (const identity of this.list()) listener({ type: 'upsert', identity });
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
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
          this.#forget(id);
        }
      } finally {
        await unlock();
      }
      this.#unusedSince.delete(id);
    }
    for (const id of this.#unusedSince.keys()) if (!present.has(id)) this.#unusedSince.delete(id);
    if (collected.length > 0) this.#log.info({ ids: collected }, 'collected unused identities');
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
          if (id !== undefined && ![...this.#held.values()].some((h) => h.id === id)) this.#forget(id);
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
    const cached = this.#byKey.get(key);
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
      if (this.#byId.has(id)) continue;
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
          if (!ok) this.#log.error({ id: held.id, labels: held.labelsKey }, 'identity was collected and reused while the store was unreachable');
        }
        await this.#timed('put', this.#putReference(held.labelsKey, held.id, await this.#ensureLease()));
        this.#log.info({ id: held.id }, 'node reference to identity restored');
      }
      for (const key of own.keys()) {
        if (this.#held.has(key) || this.#inflight.has(key)) continue;
        await this.#dropStale(key);
      }
    } catch (err) {
      this.#log.debug({ err: String(err) }, 'identity sync: KvStore not reachable');
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
      this.#log.info({ labels: key }, 'dropped a node reference no local user holds');
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
      this.#log.warn({ key }, 'ignoring an identity whose labels cannot be parsed');
      return;
    }
    const existing = this.#byId.get(id);
    if (existing && labelsKey(existing.labels) === text) return;
    this.#remember({ id, labels, scope: 'cluster' });
  }

  #remember(identity: Identity): Identity {
    this.#byId.set(identity.id, identity);
    this.#byKey.set(labelsKey(identity.labels), identity.id);
    this.#emit({ type: 'upsert', identity });
    return identity;
  }

  #forget(id: number): void {
    const identity = this.#byId.get(id);
    if (!identity || identity.scope === 'reserved') return;
    this.#byId.delete(id);
    const key = labelsKey(identity.labels);
    if (this.#byKey.get(key) === id) this.#byKey.delete(key);
    this.#emit({ type: 'delete', identity });
  }

  #releaseLocal(id: number): boolean {
    const refs = this.#localRefs.get(id);
    if (refs === undefined) return false;
    if (refs > 1) {
      this.#localRefs.set(id, refs - 1);
      return false;
    }
    this.#localRefs.delete(id);
    this.#forget(id);
    if (id < this.#nextLocal) this.#nextLocal = id;
    return true;
  }

  #emit(event: IdentityEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#log.error({ err }, 'identity listener failed');
      }
    }
  }

  #timed<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KvTimeoutError(what, this.#timeoutMs)), this.#timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

