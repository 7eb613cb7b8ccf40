import type { Cidr, Labels, Unsubscribe } from '../net.js';

/** A numeric security identity, as carried in the datapath (skb mark, VNI, ipcache). */
export type NumericIdentity = number;

/** Cilium's reserved identities; the numbers are wire ABI. */
export const ReservedIdentity = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiserver: 7,
  ingress: 8,
} as const;

/** First and last cluster-wide identity; first local (CIDR) identity. */
export const IdentityRange = {
  clusterMin: 256,
  clusterMax: 65535,
  localMin: (1 << 24) + 1,
} as const;

/** An identity and the (filtered) labels it stands for. */
export interface Identity {
  readonly id: NumericIdentity;
  readonly labels: Labels;
  /** `reserved`, `cluster` (shared through the KvStore) or `local` (CIDR, this node only). */
  readonly scope: 'reserved' | 'cluster' | 'local';
}

/** An identity appearing or disappearing. */
export type IdentityEvent =
  | { readonly type: 'upsert'; readonly identity: Identity }
  | { readonly type: 'delete'; readonly identity: Identity };

/**
 * Labels ⇄ numeric identity, reference counted. Identity-relevant labels pass a filter first,
 * so churny labels (pod-template-hash, …) never mint identities.
 */
export interface IdentityAllocator {
  /** Returns the identity for `labels`, allocating it if new, and takes a reference. */
  allocate(labels: Labels): Promise<{ identity: Identity; isNew: boolean }>;
  /** Drops a reference; returns true when it was the last one on this node. */
  release(identity: NumericIdentity): Promise<boolean>;
  /** A local identity for a CIDR peer of policy (from `(1<<24)+1` up). */
  allocateCidr(cidr: Cidr): Promise<Identity>;
  lookup(id: NumericIdentity): Identity | undefined;
  lookupByLabels(labels: Labels): Identity | undefined;
  list(): readonly Identity[];
  /** Every change from now on; `replay` first delivers the current set as upserts. */
  watch(listener: (event: IdentityEvent) => void, options?: { replay?: boolean }): Unsubscribe;
}
