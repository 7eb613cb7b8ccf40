import { IdentityRange, type Cidr, type Identity, type IdentityAllocator, type IdentityEvent, type Labels, type Logger, type NumericIdentity, type Unsubscribe } from '@cilia/core';
import { checkEncodable, labelFilter, labelsKey, NAMESPACE_LABEL, NAMESPACE_LABELS_PREFIX, NAMESPACE_NAME_LABEL, type LabelFilter } from './labels.js';
import { RESERVED_IDENTITIES, reservedFor } from './reserved.js';

/**
 * What every identity allocator shares, whatever holds its cluster identities (the KvStore,
 * CiliumIdentity objects): the identities known by id and by label set, the reserved ones, the
 * node-local CIDR identities, the namespace labels added to a pod's, the label filter, and
 * the listeners. Subclasses find or mint cluster identities and say what they learn.
 */
export abstract class IdentityRegistry implements IdentityAllocator {
  protected readonly log: Logger;
  protected readonly filter: LabelFilter;
  readonly #byId = new Map<number, Identity>();
  readonly #byKey = new Map<string, number>();
  readonly #listeners = new Set<(event: IdentityEvent) => void>();
  readonly #namespaceLabels = new Map<string, Labels>();
  readonly #localRefs = new Map<number, number>();
  #nextLocal: number = IdentityRange.localMin;

  constructor(logger: Logger, filter: LabelFilter = labelFilter()) {
    this.log = logger;
    this.filter = filter;
    for (const r of RESERVED_IDENTITIES) this.remember(r);
  }

  abstract allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }>;
  abstract release(id: NumericIdentity): Promise<boolean>;

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
    return this.filter.apply(all);
  }

  async allocateCidr(cidr: Cidr): Promise<Identity> {
    if (!/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(cidr)) throw new TypeError(`cidr: expected a prefix like 10.0.0.0/8, got ${JSON.stringify(cidr)}`);
    const labels = { [`cidr:${cidr}`]: '', 'reserved:world': '' };
    const key = labelsKey(labels);
    let id = this.#byKey.get(key);
    if (id === undefined) {
      while (this.#byId.has(this.#nextLocal)) this.#nextLocal++;
      id = this.#nextLocal++;
      this.remember({ id, labels, scope: 'local' });
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

  watch(listener: (event: IdentityEvent) => void, options: { replay?: boolean } = {}): Unsubscribe {
    if (options.replay) for (const identity of this.list()) listener({ type: 'upsert', identity });
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A label set to allocate: its reserved identity, or its identity-relevant labels and their key (checked encodable). */
  protected prepare(labels: Labels): { reserved: Identity } | { relevant: Labels; key: string } {
    const relevant = this.identityLabels(labels);
    checkEncodable(relevant);
    const reserved = reservedFor(relevant);
    return reserved ? { reserved } : { relevant, key: labelsKey(relevant) };
  }

  /** Local references to a CIDR identity (0 when this node does not use it). */
  protected localReferences(id: NumericIdentity): number {
    return this.#localRefs.get(id) ?? 0;
  }

  /** The id known for a label set (its labels key), if any. */
  protected idOf(key: string): number | undefined {
    return this.#byKey.get(key);
  }

  /** Learns an identity (announced to listeners); its label set now maps to it. */
  protected remember(identity: Identity): Identity {
    this.#byId.set(identity.id, identity);
    this.#byKey.set(labelsKey(identity.labels), identity.id);
    this.#emit({ type: 'upsert', identity });
    return identity;
  }

  /** Forgets a cluster or local identity (announced); reserved ones stay. */
  protected forget(id: number): void {
    const identity = this.#byId.get(id);
    if (!identity || identity.scope === 'reserved') return;
    this.#byId.delete(id);
    const key = labelsKey(identity.labels);
    if (this.#byKey.get(key) === id) this.#byKey.delete(key);
    this.#emit({ type: 'delete', identity });
  }

  protected releaseLocal(id: number): boolean {
    const refs = this.#localRefs.get(id);
    if (refs === undefined) return false;
    if (refs > 1) {
      this.#localRefs.set(id, refs - 1);
      return false;
    }
    this.#localRefs.delete(id);
    this.forget(id);
    if (id < this.#nextLocal) this.#nextLocal = id;
    return true;
  }

  #emit(event: IdentityEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err }, 'identity listener failed');
      }
    }
  }
}
