// Test double: an in-memory IdentityAllocator for the engine's tests (not exported by the package).
import { IdentityRange, ReservedIdentity, type Cidr, type Identity, type IdentityAllocator, type IdentityEvent, type Labels, type Unsubscribe } from '@cilia/core';

const labelsKey = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

const RESERVED_NAMES: Record<string, string> = { remoteNode: 'remote-node', kubeApiserver: 'kube-apiserver' };

/** Identities in memory; `add`/`remove` drive identity events synchronously, like the real allocator. */
export class FakeIdentities implements IdentityAllocator {
  readonly #byId = new Map<number, Identity>();
  readonly #refs = new Map<number, number>();
  readonly #listeners = new Set<(e: IdentityEvent) => void>();
  #nextCluster: number = IdentityRange.clusterMin;
  #nextLocal: number = IdentityRange.localMin;

  constructor() {
    for (const [name, id] of Object.entries(ReservedIdentity)) this.#set({ id, labels: { [`reserved:${RESERVED_NAMES[name] ?? name}`]: '' }, scope: 'reserved' });
  }

  /** A cluster identity for `labels` (the existing one when known). */
  add(labels: Labels): Identity {
    return this.lookupByLabels(labels) ?? this.#set({ id: this.#nextCluster++, labels, scope: 'cluster' });
  }

  remove(id: number): void {
    const identity = this.#byId.get(id);
    if (!identity) return;
    this.#byId.delete(id);
    this.#refs.delete(id);
    this.#emit({ type: 'delete', identity });
  }

  async allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }> {
    const known = this.lookupByLabels(labels);
    return { identity: known ?? this.add(labels), isNew: !known };
  }

  async release(id: number): Promise<boolean> {
    if (id < IdentityRange.localMin) return false;
    const refs = (this.#refs.get(id) ?? 1) - 1;
    if (refs > 0) {
      this.#refs.set(id, refs);
      return false;
    }
    this.remove(id);
    return true;
  }

  async allocateCidr(cidr: Cidr): Promise<Identity> {
    const labels = { [`cidr:${cidr}`]: '', 'reserved:world': '' };
    const identity = this.lookupByLabels(labels) ?? this.#set({ id: this.#nextLocal++, labels, scope: 'local' });
    this.#refs.set(identity.id, (this.#refs.get(identity.id) ?? 0) + 1);
    return identity;
  }

  lookup(id: number): Identity | undefined {
    return this.#byId.get(id);
  }

  lookupByLabels(labels: Labels): Identity | undefined {
    const key = labelsKey(labels);
    return [...this.#byId.values()].find((i) => labelsKey(i.labels) === key);
  }

  list(): readonly Identity[] {
    return [...this.#byId.values()];
  }

  watch(listener: (e: IdentityEvent) => void, options?: { replay?: boolean }): Unsubscribe {
    if (options?.replay) for (const identity of this.#byId.values()) listener({ type: 'upsert', identity });
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #set(identity: Identity): Identity {
    this.#byId.set(identity.id, identity);
    this.#emit({ type: 'upsert', identity });
    return identity;
  }

  #emit(e: IdentityEvent): void {
    for (const l of this.#listeners) l(e);
  }
}
