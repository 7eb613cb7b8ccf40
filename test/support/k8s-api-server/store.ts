import { randomUUID } from 'node:crypto';
import type { ResourceType } from './resources.js';

/** A stored object: JSON with `metadata`. */
export type KubeJson = Record<string, unknown> & { metadata: Metadata };

export interface Metadata {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as the store's history keeps it for watches that resume from a resourceVersion. */
export interface Change {
  readonly rv: number;
  readonly type: WatchEventType;
  /** `<group>/<plural>`: the storage key of the kind (every served version shares it). */
  readonly resource: string;
  readonly object: KubeJson;
  /** The object before a MODIFIED (a watch with a selector turns a change out of it into DELETED). */
  readonly previous?: KubeJson;
}

export function storageKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/**
 * Objects by kind with one resourceVersion counter for all (etcd's revision), and the history
 * of changes a watch resumes from, until it is compacted away.
 */
export class ObjectStore {
  #rv = 1;
  #compacted = 0;
  readonly #objects = new Map<string, Map<string, KubeJson>>();
  #history: Change[] = [];
  readonly #listeners = new Set<(change: Change) => void>();

  /** The current resourceVersion (the newest change's). */
  get revision(): number {
    return this.#rv;
  }

  /** Changes at or below this revision are gone: a watch from an older resourceVersion gets 410 Gone. */
  get compactedRevision(): number {
    return this.#compacted;
  }

  /** Forgets every change so far, as etcd's compaction does. */
  compact(): void {
    this.#compacted = this.#rv;
    this.#history = [];
  }

  list(resource: string, namespace?: string): KubeJson[] {
    const all = [...(this.#objects.get(resource)?.values() ?? [])];
    return (namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace)).sort((a, b) =>
      objectKey(a.metadata.namespace, a.metadata.name).localeCompare(objectKey(b.metadata.namespace, b.metadata.name)),
    );
  }

  get(resource: string, namespace: string | undefined, name: string): KubeJson | undefined {
    return this.#objects.get(resource)?.get(objectKey(namespace, name));
  }

  /** Stores a new object: uid, creationTimestamp, generation 1 and the next resourceVersion set. */
  create(resource: string, object: KubeJson): KubeJson {
    const stored: KubeJson = {
      ...object,
      metadata: { ...object.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), generation: 1, resourceVersion: String(++this.#rv) },
    };
    let kind = this.#objects.get(resource);
    if (!kind) this.#objects.set(resource, (kind = new Map()));
    kind.set(objectKey(stored.metadata.namespace, stored.metadata.name), stored);
    this.#record({ rv: this.#rv, type: 'ADDED', resource, object: stored });
    return stored;
  }

  /** Replaces an object; `generation` goes up when anything but metadata and status changed. */
  update(resource: string, object: KubeJson): KubeJson {
    const previous = this.get(resource, object.metadata.namespace, object.metadata.name);
    if (!previous) throw new Error(`update of an object that is not stored: ${resource} ${object.metadata.name}`);
    const { metadata: _m1, status: _s1, ...specBefore } = previous;
    const { metadata: _m2, status: _s2, ...specAfter } = object;
    const generation = (previous.metadata.generation ?? 1) + (JSON.stringify(specBefore) === JSON.stringify(specAfter) ? 0 : 1);
    const stored: KubeJson = {
      ...object,
      metadata: { ...object.metadata, uid: previous.metadata.uid, creationTimestamp: previous.metadata.creationTimestamp, generation, resourceVersion: String(++this.#rv) },
    };
    this.#objects.get(resource)!.set(objectKey(stored.metadata.namespace, stored.metadata.name), stored);
    this.#record({ rv: this.#rv, type: 'MODIFIED', resource, object: stored, previous });
    return stored;
  }

  /** Removes an object; the DELETED event carries it with the deletion's resourceVersion. */
  delete(resource: string, namespace: string | undefined, name: string): KubeJson | undefined {
    const kind = this.#objects.get(resource);
    const previous = kind?.get(objectKey(namespace, name));
    if (!kind || !previous) return undefined;
    kind.delete(objectKey(namespace, name));
    const gone: KubeJson = { ...previous, metadata: { ...previous.metadata, resourceVersion: String(++this.#rv) } };
    this.#record({ rv: this.#rv, type: 'DELETED', resource, object: gone });
    return gone;
  }

  /** Changes after `rv`, or undefined when some of them were compacted away (410 Gone). */
  since(rv: number): Change[] | undefined {
    if (rv < this.#compacted) return undefined;
    return this.#history.filter((c) => c.rv > rv);
  }

  /** Every change from now on, synchronously and in order. */
  subscribe(listener: (change: Change) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #record(change: Change): void {
    this.#history.push(change);
    for (const l of this.#listeners) l(change);
  }
}
