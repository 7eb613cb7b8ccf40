import type { Unsubscribe } from '../net.js';

/** A stored value with its revisions. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Revision of the last change to this key (etcd's mod_revision). */
  readonly modRevision: number;
  /** Revision at which the key was created. */
  readonly createRevision: number;
  /** Lease the key is attached to, if any. */
  readonly lease?: number;
}

/** A change seen by a watch. */
export type KvEvent =
  | { readonly type: 'put'; readonly entry: KvEntry; readonly revision: number }
  | { readonly type: 'delete'; readonly key: string; readonly revision: number };

/** A lease: keys attached to it vanish when it expires or is revoked. */
export interface KvLease {
  readonly id: number;
  readonly ttlSeconds: number;
  /** Revokes the lease and deletes its keys. */
  revoke(): Promise<void>;
}

/**
 * The shared key-value store: embedded (single node, persisted) by default, etcd for
 * multi-node. Keys are `/`-separated strings; values are bytes.
 */
export interface KvStore {
  get(key: string): Promise<KvEntry | undefined>;
  /** Every key under `prefix`, with the store revision the listing is consistent with. */
  list(prefix: string): Promise<{ entries: KvEntry[]; revision: number }>;
  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: Uint8Array, options?: { lease?: number }): Promise<number>;
  /** Writes only if the key does not exist; returns false if it did. */
  create(key: string, value: Uint8Array, options?: { lease?: number }): Promise<boolean>;
  /** Writes only if the key's modRevision still equals `expected`; returns false otherwise. */
  compareAndSwap(key: string, value: Uint8Array, expected: number, options?: { lease?: number }): Promise<boolean>;
  /** Returns false if the key did not exist. */
  delete(key: string): Promise<boolean>;
  /**
   * Every change under `prefix` after `fromRevision` (default: now), in order, none missed or
   * repeated across reconnects.
   */
  watch(prefix: string, listener: (event: KvEvent) => void, options?: { fromRevision?: number }): Unsubscribe;
  /** A lease the store keeps alive until revoked or the agent stops. */
  grantLease(ttlSeconds: number): Promise<KvLease>;
  /** A distributed lock; resolves with its release function. */
  lock(key: string): Promise<() => Promise<void>>;
}
