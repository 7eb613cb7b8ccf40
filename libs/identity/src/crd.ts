import { createHash } from 'node:crypto';
import { defineToken, IdentityRange, type Identity, type Labels, type Logger, type NumericIdentity } from '@cilia/core';
import { IdentityRegistry } from './base.js';
import { labelsKey, type LabelFilter } from './labels.js';
import { INIT_IDENTITY } from './reserved.js';

/** One `CiliumIdentity` object: its name is the numeric id, `security-labels` the labels it stands for. */
export interface IdentityObject {
  readonly id: number;
  readonly labels: Labels;
}

/**
 * Where `identity.mode: crd` keeps cluster identities: Cilium's `CiliumIdentity` objects
 * (cilium.io/v2) in the Kubernetes API. Provided by @cilia/plugin-kubernetes.
 */
export interface CiliumIdentityStore {
  /** Every identity object, those there now then each change; `synced` once the first listing is in. */
  follow(handlers: { upsert(object: IdentityObject): void; delete(id: number): void; synced(): void }): void;
  /** Stops following. */
  stop(): Promise<void>;
  /** Creates the object only if no object has its id: false when the id is taken. */
  create(object: IdentityObject): Promise<boolean>;
  /** The object of an id, read from the API server (not a cache). */
  get(id: number): Promise<IdentityObject | undefined>;
}

/** The token under which @cilia/plugin-kubernetes provides the CiliumIdentity objects. */
export const CiliumIdentities = defineToken<CiliumIdentityStore>('cilia.identity.CiliumIdentityStore');

/** What {@link CrdIdentityAllocator} needs. */
export interface CrdIdentityAllocatorOptions {
  readonly store: CiliumIdentityStore;
  readonly logger: Logger;
  readonly filter?: LabelFilter;
  /** How long start waits for the first listing before allocating from the API alone. Default 5 s. */
  readonly syncTimeoutMs?: number;
}

const SPAN = IdentityRange.clusterMax - IdentityRange.clusterMin + 1;

/**
 * Labels → identity with cluster identities as `CiliumIdentity` objects, no KvStore: Cilium's
 * numbering (256–65535), its object layout. A label set already known (the objects are
 * followed) has its id at once. A new one is claimed with a create-only write (the API server
 * answers 409 AlreadyExists to all but one creator of a name) at the id its labels hash to,
 * then the ids after it in order: on a taken id the object is read back, and if it carries the
 * same labels that id is the answer. Agents allocating one label set concurrently therefore
 * walk the same ids in the same order and stop at the same object — no lock, no duplicate.
 * When the API server cannot be reached, `allocate` answers the reserved `init` identity (the
 * endpoint manager asks again later). Unused objects are left for collection by the operator,
 * as in Cilium.
 */
export class CrdIdentityAllocator extends IdentityRegistry {
  readonly #store: CiliumIdentityStore;
  readonly #syncTimeoutMs: number;
  /** Local references per cluster id. */
  readonly #held = new Map<number, number>();
  readonly #inflight = new Map<string, Promise<{ id: number; isNew: boolean }>>();
  #synced = false;

  constructor(options: CrdIdentityAllocatorOptions) {
    super(options.logger, options.filter);
    this.#store = options.store;
    this.#syncTimeoutMs = options.syncTimeoutMs ?? 5000;
  }

  /** Follows the objects; resolves once they are listed (or after the sync timeout, warning). */
  async start(): Promise<void> {
    let synced!: () => void;
    const listed = new Promise<void>((resolve) => (synced = resolve));
    this.#store.follow({
      upsert: (o) => {
        const known = this.lookup(o.id);
        if (!known || labelsKey(known.labels) !== labelsKey(o.labels)) this.remember({ id: o.id, labels: o.labels, scope: 'cluster' });
      },
      delete: (id) => {
        if (!this.#held.has(id)) this.forget(id);
      },
      synced: () => {
        this.#synced = true;
        synced();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([listed, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#syncTimeoutMs)))]);
    clearTimeout(timer);
    if (!this.#synced) this.log.warn({ timeoutMs: this.#syncTimeoutMs }, 'CiliumIdentity objects not listed yet; allocating through the API server meanwhile');
  }

  async stop(): Promise<void> {
    await this.#store.stop();
  }

  async allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }> {
    const prepared = this.prepare(labels);
    if ('reserved' in prepared) return { identity: prepared.reserved, isNew: false };
    const { relevant, key } = prepared;
    const known = this.idOf(key);
    let id: number;
    let isNew = false;
    if (known !== undefined && known >= IdentityRange.clusterMin && known <= IdentityRange.clusterMax) id = known;
    else {
      try {
        ({ id, isNew } = await this.#claimOnce(key, relevant));
      } catch (err) {
        this.log.warn({ err: String(err), labels: key }, 'cannot allocate an identity now; answering init');
        return { identity: INIT_IDENTITY, isNew: false };
      }
    }
    this.#held.set(id, (this.#held.get(id) ?? 0) + 1);
    const identity = this.lookup(id) ?? this.remember({ id, labels: relevant, scope: 'cluster' });
    return { identity, isNew };
  }

  async release(id: NumericIdentity): Promise<boolean> {
    if (id < IdentityRange.clusterMin) return false;
    if (id >= IdentityRange.localMin) return this.releaseLocal(id);
    const refs = this.#held.get(id);
    if (refs === undefined) return false;
    if (refs > 1) {
      this.#held.set(id, refs - 1);
      return false;
    }
    this.#held.delete(id);
    return true;
  }

  /** Local references to `id` (0 when this node does not use it). */
  references(id: NumericIdentity): number {
    if (id >= IdentityRange.localMin) return this.localReferences(id);
    return this.#held.get(id) ?? 0;
  }

  /** One claim per label set at a time on this node. */
  #claimOnce(key: string, labels: Labels): Promise<{ id: number; isNew: boolean }> {
    let run = this.#inflight.get(key);
    if (!run) {
      run = this.#claim(key, labels).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, run);
    }
    return run;
  }

  /**
   * Walks the ids from the label set's starting id, asking the API server at each (never the
   * cache, which may be behind: every node must see the same ids taken, in the same order).
   */
  async #claim(key: string, labels: Labels): Promise<{ id: number; isNew: boolean }> {
    const start = startingId(key);
    for (let i = 0; i < SPAN; i++) {
      const id = IdentityRange.clusterMin + ((start + i) % SPAN);
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await this.#store.create({ id, labels })) {
          this.log.info({ id, labels: key }, 'identity created (CiliumIdentity)');
          return { id, isNew: true };
        }
        const existing = await this.#store.get(id);
        if (existing) {
          if (labelsKey(existing.labels) === key) return { id, isNew: false };
          break; // another label set's: the next id
        }
        // Deleted between our create and our read: try this id again.
      }
    }
    throw new Error(`no cluster identity left (all ${SPAN} ids in ${IdentityRange.clusterMin}-${IdentityRange.clusterMax} are taken)`);
  }
}

/** Where a label set's walk over the cluster ids starts: its labels key hashed (the same on every node). */
function startingId(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % SPAN;
}
