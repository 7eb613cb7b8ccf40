import type { Logger, Service, ServiceBackend, ServiceFrontend, ServiceManager } from '@cilia/core';
import { datapathMaps as m } from '@cilia/datapath';
import { maglevTable } from './maglev.js';
import { maglevInnerMap, type LbMaps } from './maps.js';
import { backendKey, frontendKey, LB_FRONTEND_TYPES, LB_PROTOCOLS, selectableBackends, servesLocalOnly } from './model.js';

/** IP protocol numbers of the protocols the load balancer translates. */
export const PROTOCOL_NUMBER = { TCP: 6, UDP: 17 } as const;
const PROTOCOL_NAME: Readonly<Record<number, 'TCP' | 'UDP'>> = { 6: 'TCP', 17: 'UDP' };

/** Frontend ids are conntrack's `rev_nat_index` (u16); 0 means none. */
export const MAX_FRONTEND_ID = 0xffff;
const MAX_BACKEND_ID = 0xffffffff;

/** What the load balancer needs. */
export interface LoadBalancerOptions {
  readonly maps: LbMaps;
  /** This node's name: the backends `Local` traffic policies keep. */
  readonly nodeName: string;
  readonly maglev: { readonly tableSize: number; readonly seed: number };
  readonly logger: Logger;
}

/** A frontend as the maps hold it. */
export interface LbFrontendView {
  /** Its id (`rev_nat_index`), stable across agent restarts. */
  readonly id: number;
  /** The service it serves; undefined for a frontend found in the maps and not (yet) claimed. */
  readonly service?: Service;
  /** Every backend it references, with its id: the selectable ones first, in slot order. */
  readonly backends: ReadonlyArray<{ readonly id: number; readonly backend: ServiceBackend; readonly selectable: boolean }>;
}

interface Frontend {
  readonly key: string;
  readonly id: number;
  readonly frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>;
  service?: Service;
  /** Backend ids in slots 1..n, as written. */
  slots: number[];
  /** Slot 0 as written. */
  master?: m.Lb4ServiceValue;
  /** Keys of every backend it references (any state). */
  refs: Set<string>;
  /** Backend ids with an affinity match entry for this frontend. */
  matched: Set<number>;
  /** What its Maglev table was built from ('' when it has none; '?' found in the maps). */
  maglev: string;
  reverseNat: boolean;
}

interface Backend {
  readonly id: number;
  readonly key: string;
  value?: m.Lb4BackendValue;
  readonly refs: Set<string>;
}

type AffinityMatch = ReturnType<typeof m.LbAffinityMatch.decode>;
type ReverseNat = ReturnType<typeof m.Lb4ReverseNat.decode>;

/** The writes one change needs, in the order they are made (see {@link LoadBalancer}). */
interface Plan {
  readonly delMasters: m.Lb4KeyValue[];
  readonly backends: Array<[number, m.Lb4BackendValue]>;
  readonly reverseNat: Array<[number, ReverseNat]>;
  readonly match: Array<[AffinityMatch, number]>;
  readonly maglev: Array<[number, Uint32Array]>;
  readonly slots: Array<[m.Lb4KeyValue, m.Lb4ServiceValue]>;
  readonly masters: Array<[m.Lb4KeyValue, m.Lb4ServiceValue]>;
  readonly delSlots: m.Lb4KeyValue[];
  readonly delMatch: AffinityMatch[];
  readonly delMaglev: number[];
  readonly delReverseNat: number[];
  readonly delBackends: number[];
}

const emptyPlan = (): Plan => ({
  delMasters: [],
  backends: [],
  reverseNat: [],
  match: [],
  maglev: [],
  slots: [],
  masters: [],
  delSlots: [],
  delMatch: [],
  delMaglev: [],
  delReverseNat: [],
  delBackends: [],
});

const slotKey = (f: Frontend, slot: number): m.Lb4KeyValue => ({
  address: f.frontend.address,
  dport: f.frontend.port,
  backendSlot: slot,
  proto: PROTOCOL_NUMBER[f.frontend.protocol as 'TCP' | 'UDP'],
});

const sameValue = (a: object | undefined, b: object): boolean => a !== undefined && Object.entries(b).every(([k, v]) => (a as Record<string, unknown>)[k] === v);

/**
 * The load balancer's writer: services (one per frontend) into the pinned LB maps, as the only
 * writer they have. Every change is a diff against what the maps hold — backends added or
 * removed, slots rewritten where they differ, never a flush — ordered so that a packet meets a
 * consistent frontend at every moment: frontends that go away first lose their slot 0 (no new
 * connection picks them), then backends, reverse NAT, affinity matches and Maglev tables are
 * written, then the slots, then slot 0 with the new count, and only then is what is no longer
 * referenced deleted. Frontend and backend ids come back from the maps after a restart.
 */
export class LoadBalancer implements ServiceManager {
  readonly #o: LoadBalancerOptions;
  readonly #log: Logger;
  readonly #frontends = new Map<string, Frontend>();
  readonly #frontendIds = new Map<number, string>();
  readonly #backends = new Map<string, Backend>();
  readonly #backendIds = new Map<number, string>();
  #nextFrontendId = 1;
  #nextBackendId = 1;

  constructor(options: LoadBalancerOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#restore();
  }

  /** Frontends found in the maps at start that no service has claimed yet. */
  get unclaimed(): number {
    let n = 0;
    for (const f of this.#frontends.values()) if (!f.service) n++;
    return n;
  }

  async upsert(service: Service): Promise<void> {
    this.apply([service], []);
  }

  async delete(frontend: ServiceFrontend): Promise<boolean> {
    const key = frontendKey(frontend);
    if (!this.#frontends.has(key)) return false;
    this.apply([], [frontend]);
    return true;
  }

  list(): readonly Service[] {
    return [...this.#frontends.values()].flatMap((f) => (f.service ? [f.service] : []));
  }

  /** Every frontend with its id and its backends' ids. */
  frontends(): LbFrontendView[] {
    return [...this.#frontends.values()].map((f) => this.#view(f));
  }

  /** One frontend by id. */
  frontend(id: number): LbFrontendView | undefined {
    const key = this.#frontendIds.get(id);
    return key === undefined ? undefined : this.#view(this.#frontends.get(key)!);
  }

  /** The id a frontend has (or had restored), if any. */
  frontendId(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): number | undefined {
    return this.#frontends.get(frontendKey(frontend))?.id;
  }

  /** The id of a backend (`address:port/protocol`), if the maps hold it. */
  backendId(key: string): number | undefined {
    return this.#backends.get(key)?.id;
  }

  /**
   * Makes the maps hold exactly `services`: every one upserted, every other frontend (restored
   * from the maps or upserted before) deleted, in batches. What the agent does once its sources
   * have delivered their current state.
   */
  sync(services: readonly Service[]): { upserted: number; deleted: number } {
    const wanted = new Set(services.map((s) => frontendKey(s.frontend)));
    const gone = [...this.#frontends.values()].filter((f) => !wanted.has(f.key)).map((f) => f.frontend);
    this.apply(services, gone);
    // Backends restored from the maps that nothing references any more.
    const orphans = [...this.#backends.values()].filter((b) => b.refs.size === 0);
    if (orphans.length > 0) {
      this.#o.maps.backends.deleteBatch(orphans.map((b) => b.id));
      for (const b of orphans) this.#forgetBackend(b);
    }
    return { upserted: services.length, deleted: gone.length };
  }

  /** Upserts and deletes in one batch of map writes. Throws (naming the service) on bad input. */
  apply(upserts: readonly Service[], deletes: readonly Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>[]): void {
    for (const s of upserts) checkService(s);
    // One change per frontend: the last upsert of a key wins, and an upsert replaces a delete.
    const latest = new Map(upserts.map((s) => [frontendKey(s.frontend), s]));
    const plan = emptyPlan();
    for (const f of deletes) if (!latest.has(frontendKey(f))) this.#planDelete(frontendKey(f), plan);
    for (const s of latest.values()) this.#planUpsert(s, plan);
    try {
      this.#execute(plan);
    } catch (err) {
      // What the maps hold is the truth: read it again, so the next change diffs against it.
      this.#log.error({ err }, 'writing the load balancer maps failed; reloading their state');
      this.#reload();
      throw err;
    }
  }

  #view(f: Frontend): LbFrontendView {
    const byKey = new Map((f.service?.backends ?? []).map((b) => [backendKey(b, f.frontend.protocol), b]));
    const selected = new Set(f.slots);
    const out: Array<LbFrontendView['backends'][number]> = [];
    for (const id of f.slots) {
      const key = this.#backendIds.get(id);
      const b = (key && byKey.get(key)) || this.#backendFromMap(id);
      if (b) out.push({ id, backend: b, selectable: true });
    }
    for (const key of f.refs) {
      const b = this.#backends.get(key);
      if (!b || selected.has(b.id)) continue;
      const backend = byKey.get(key) ?? this.#backendFromMap(b.id);
      if (backend) out.push({ id: b.id, backend, selectable: false });
    }
    return { id: f.id, ...(f.service ? { service: f.service } : {}), backends: out };
  }

  #backendFromMap(id: number): ServiceBackend | undefined {
    const key = this.#backendIds.get(id);
    const v = key ? this.#backends.get(key)?.value : undefined;
    if (!v) return undefined;
    const state = (Object.entries(m.LbBackendState).find(([, code]) => code === v.state)?.[0] ?? 'active') as ServiceBackend['state'];
    return { address: v.address, port: v.port, weight: 1, state };
  }

  #planUpsert(service: Service, plan: Plan): void {
    const key = frontendKey(service.frontend);
    const protocol = service.frontend.protocol as 'TCP' | 'UDP';
    let f = this.#frontends.get(key);
    if (!f) {
      const id = this.#allocFrontendId(key);
      f = { key, id, frontend: { address: service.frontend.address, port: service.frontend.port, protocol }, slots: [], refs: new Set(), matched: new Set(), maglev: '', reverseNat: false };
      this.#frontends.set(key, f);
      this.#frontendIds.set(id, key);
    }
    const members = servesLocalOnly(service) ? service.backends.filter((b) => b.nodeName === this.#o.nodeName) : service.backends;

    // Backends, in any state: written before any slot names them.
    const wanted = new Map<string, ServiceBackend>();
    for (const b of members) wanted.set(backendKey(b, protocol), b);
    for (const [bk, b] of wanted) {
      const backend = this.#backend(bk);
      const value = { address: b.address, port: b.port, proto: PROTOCOL_NUMBER[protocol], state: m.LbBackendState[b.state] };
      if (!sameValue(backend.value, value)) {
        plan.backends.push([backend.id, value]);
        backend.value = value;
      }
      backend.refs.add(key);
    }
    for (const bk of f.refs) if (!wanted.has(bk)) this.#release(bk, key, plan);
    f.refs = new Set(wanted.keys());

    // Slots: the selectable backends; one that stays keeps its slot, a new one fills a hole.
    const selectable = selectableBackends([...wanted.values()]);
    const ids = selectable.map((b) => this.#backends.get(backendKey(b, protocol))!.id);
    const slots = keepPositions(f.slots, ids);
    slots.forEach((id, i) => {
      if (f.slots[i] !== id) plan.slots.push([slotKey(f, i + 1), { backendId: id, affinityTimeout: 0, count: 0, revNatIndex: f.id, type: 0, algorithm: 0, flags: 0 }]);
    });
    for (let i = slots.length; i < f.slots.length; i++) plan.delSlots.push(slotKey(f, i + 1));
    f.slots = slots;

    if (!f.reverseNat) {
      plan.reverseNat.push([f.id, { address: f.frontend.address, port: f.frontend.port }]);
      f.reverseNat = true;
    }

    const matched = service.sessionAffinitySeconds > 0 ? new Set(ids) : new Set<number>();
    for (const id of matched) if (!f.matched.has(id)) plan.match.push([{ backendId: id, revNatIndex: f.id }, 1]);
    for (const id of f.matched) if (!matched.has(id)) plan.delMatch.push({ backendId: id, revNatIndex: f.id });
    f.matched = matched;

    if (service.algorithm === 'maglev' && selectable.length > 0) {
      const entries = selectable.map((b, i) => ({ key: backendKey(b, protocol), weight: b.weight, id: ids[i]! }));
      const signature = entries.map((e) => `${e.key}*${e.weight}`).sort().join(',');
      if (signature !== f.maglev) {
        const table = maglevTable(entries, this.#o.maglev.tableSize, this.#o.maglev.seed);
        plan.maglev.push([f.id, Uint32Array.from(table, (i) => entries[i]!.id)]);
        f.maglev = signature;
      }
    } else if (f.maglev !== '') {
      plan.delMaglev.push(f.id);
      f.maglev = '';
    }

    const master: m.Lb4ServiceValue = {
      backendId: 0,
      affinityTimeout: service.sessionAffinitySeconds,
      count: slots.length,
      revNatIndex: f.id,
      type: m.LbFrontendType[service.frontend.type as keyof typeof m.LbFrontendType],
      algorithm: m.LbAlgorithmCode[service.algorithm],
      flags: servesLocalOnly(service) ? m.LB_FLAGS.localOnly : 0,
    };
    if (!sameValue(f.master, master)) plan.masters.push([slotKey(f, 0), master]);
    f.master = master;
    f.service = service;
  }

  #planDelete(key: string, plan: Plan): void {
    const f = this.#frontends.get(key);
    if (!f) return;
    plan.delMasters.push(slotKey(f, 0));
    for (let i = 0; i < f.slots.length; i++) plan.delSlots.push(slotKey(f, i + 1));
    for (const id of f.matched) plan.delMatch.push({ backendId: id, revNatIndex: f.id });
    if (f.maglev !== '') plan.delMaglev.push(f.id);
    if (f.reverseNat) plan.delReverseNat.push(f.id);
    for (const bk of f.refs) this.#release(bk, key, plan);
    this.#frontends.delete(key);
    this.#frontendIds.delete(f.id);
  }

  #backend(key: string): Backend {
    let b = this.#backends.get(key);
    if (!b) {
      b = { id: this.#allocBackendId(), key, refs: new Set() };
      this.#backends.set(key, b);
      this.#backendIds.set(b.id, key);
    }
    return b;
  }

  /** `frontend` no longer references backend `key`; the last reference deletes it (last). */
  #release(key: string, frontend: string, plan: Plan): void {
    const b = this.#backends.get(key);
    if (!b) return;
    b.refs.delete(frontend);
    if (b.refs.size > 0) return;
    if (b.value) plan.delBackends.push(b.id);
    this.#forgetBackend(b);
  }

  #forgetBackend(b: Backend): void {
    this.#backends.delete(b.key);
    this.#backendIds.delete(b.id);
  }

  #execute(p: Plan): void {
    const maps = this.#o.maps;
    if (p.delMasters.length) maps.services.deleteBatch(p.delMasters);
    if (p.backends.length) maps.backends.updateBatch(p.backends);
    if (p.reverseNat.length) maps.reverseNat.updateBatch(p.reverseNat);
    if (p.match.length) maps.affinityMatch.updateBatch(p.match);
    for (const [id, table] of p.maglev) {
      const inner = maglevInnerMap(table);
      try {
        maps.maglev.update(id, inner.fd);
      } finally {
        inner.close();
      }
    }
    if (p.slots.length) maps.services.updateBatch(p.slots);
    if (p.masters.length) maps.services.updateBatch(p.masters);
    if (p.delSlots.length) maps.services.deleteBatch(p.delSlots);
    if (p.delMatch.length) maps.affinityMatch.deleteBatch(p.delMatch);
    if (p.delMaglev.length) maps.maglev.deleteBatch(p.delMaglev);
    if (p.delReverseNat.length) maps.reverseNat.deleteBatch(p.delReverseNat);
    if (p.delBackends.length) maps.backends.deleteBatch(p.delBackends);
  }

  #allocFrontendId(key: string): number {
    for (let n = 0; n < MAX_FRONTEND_ID; n++) {
      const id = ((this.#nextFrontendId - 1 + n) % MAX_FRONTEND_ID) + 1;
      if (!this.#frontendIds.has(id)) {
        this.#nextFrontendId = (id % MAX_FRONTEND_ID) + 1;
        return id;
      }
    }
    throw new RangeError(`no free frontend id for ${key}: all ${MAX_FRONTEND_ID} are in use`);
  }

  #allocBackendId(): number {
    for (;;) {
      const id = this.#nextBackendId;
      this.#nextBackendId = id >= MAX_BACKEND_ID ? 1 : id + 1;
      if (!this.#backendIds.has(id)) return id;
    }
  }

  #reload(): void {
    const services = new Map([...this.#frontends.values()].flatMap((f) => (f.service ? [[f.key, f.service] as const] : [])));
    this.#frontends.clear();
    this.#frontendIds.clear();
    this.#backends.clear();
    this.#backendIds.clear();
    this.#restore();
    for (const [key, service] of services) {
      const f = this.#frontends.get(key);
      if (f) f.service = service;
    }
  }

  /** Reads what the maps hold: frontends with their ids and slots, backends with theirs. */
  #restore(): void {
    const maps = this.#o.maps;
    for (const [id, v] of maps.backends.lookupBatch()) {
      const key = `${v.address}:${v.port}/${PROTOCOL_NAME[v.proto] ?? v.proto}`;
      this.#backends.set(key, { id, key, value: v, refs: new Set() });
      this.#backendIds.set(id, key);
      if (id >= this.#nextBackendId) this.#nextBackendId = id + 1;
    }
    const slots: Array<[m.Lb4KeyValue, m.Lb4ServiceValue]> = [];
    for (const [k, v] of maps.services.lookupBatch()) {
      if (k.backendSlot !== 0) {
        slots.push([k, v]);
        continue;
      }
      const protocol = PROTOCOL_NAME[k.proto];
      if (!protocol) continue;
      const frontend = { address: k.address, port: k.dport, protocol };
      const key = frontendKey(frontend);
      this.#frontends.set(key, { key, id: v.revNatIndex, frontend, master: v, slots: [], refs: new Set(), matched: new Set(), maglev: '', reverseNat: false });
      this.#frontendIds.set(v.revNatIndex, key);
      if (v.revNatIndex >= this.#nextFrontendId) this.#nextFrontendId = (v.revNatIndex % MAX_FRONTEND_ID) + 1;
    }
    for (const [k, v] of slots) {
      const protocol = PROTOCOL_NAME[k.proto];
      const f = protocol && this.#frontends.get(frontendKey({ address: k.address, port: k.dport, protocol }));
      if (!f) continue;
      f.slots[k.backendSlot - 1] = v.backendId;
      const bk = this.#backendIds.get(v.backendId);
      if (bk) {
        f.refs.add(bk);
        this.#backends.get(bk)!.refs.add(f.key);
      }
    }
    for (const f of this.#frontends.values()) f.slots = Array.from(f.slots, (id) => id ?? 0);
    for (const id of maps.reverseNat.keys()) {
      const key = this.#frontendIds.get(id);
      if (key) this.#frontends.get(key)!.reverseNat = true;
    }
    for (const match of maps.affinityMatch.keys()) {
      const key = this.#frontendIds.get(match.revNatIndex);
      if (key) this.#frontends.get(key)!.matched.add(match.backendId);
    }
    for (const id of maps.maglev.keys()) {
      const key = this.#frontendIds.get(id);
      if (key) this.#frontends.get(key)!.maglev = '?';
    }
    if (this.#frontends.size > 0) this.#log.info({ frontends: this.#frontends.size, backends: this.#backends.size }, 'load balancer state restored from the maps');
  }
}

/**
 * The new slot list for `ids`: an id that stays keeps its slot, new ids fill the holes others
 * left, then are appended; holes that remain (fewer backends than before) take the last ids.
 * Fewest slots rewritten.
 */
export function keepPositions(old: readonly number[], ids: readonly number[]): number[] {
  const want = new Set(ids);
  const out: Array<number | undefined> = old.map((id) => (want.has(id) ? id : undefined));
  const placed = new Set(out);
  const fresh = ids.filter((id) => !placed.has(id));
  for (let i = 0; i < out.length && fresh.length > 0; i++) if (out[i] === undefined) out[i] = fresh.shift();
  out.push(...fresh);
  for (let hole = out.indexOf(undefined); hole >= 0; hole = out.indexOf(undefined)) {
    while (out.length > 0 && out[out.length - 1] === undefined) out.pop();
    if (hole >= out.length) break;
    out[hole] = out.pop();
  }
  return out as number[];
}

/** Refuses a service the maps cannot hold, naming the field. */
function checkService(s: Service): void {
  const at = `service ${s.namespace}/${s.name} ${frontendKey(s.frontend)}`;
  if (!(LB_PROTOCOLS as readonly string[]).includes(s.frontend.protocol)) throw new TypeError(`${at}: frontend.protocol: must be one of ${LB_PROTOCOLS.join(', ')}`);
  if (!(LB_FRONTEND_TYPES as readonly string[]).includes(s.frontend.type)) throw new TypeError(`${at}: frontend.type: must be one of ${LB_FRONTEND_TYPES.join(', ')}`);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(s.frontend.address)) throw new TypeError(`${at}: frontend.address: must be an IPv4 address`);
}
