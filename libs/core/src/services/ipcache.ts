import type { Cidr, IpAddress, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/**
 * Where an ipcache entry came from. Each source holds its own entry per prefix; the datapath
 * sees the most authoritative one: local (this node's endpoints) > kvstore (other nodes) >
 * custom > k8s > generated (policy CIDRs, the node's own addresses, the world default).
 */
export type IpCacheSource = 'local' | 'kvstore' | 'k8s' | 'generated' | 'custom';

/** One IP or prefix and what the datapath needs to know about it. */
export interface IpCacheEntry {
  readonly prefix: Cidr;
  readonly identity: NumericIdentity;
  /** The node IP to tunnel to, for remote pods in overlay modes. */
  readonly tunnelEndpoint?: IpAddress;
  /** The node that owns the address, if any. */
  readonly node?: string;
  /** A pod's namespace and name, for an endpoint's address (flows show them for remote pods too). */
  readonly namespace?: string;
  readonly podName?: string;
  readonly source: IpCacheSource;
}

/** Changes applied in one batch. */
export interface IpCacheDelta {
  /** Each sets its source's entry for its prefix. */
  readonly upserts: readonly IpCacheEntry[];
  /** Prefixes whose `deleteSource` entry goes (every source's, without one). */
  readonly deletes: readonly Cidr[];
  /** Whose entries `deletes` removes: a source never takes away what another holds. */
  readonly deleteSource?: IpCacheSource;
}

/**
 * IP/CIDR → identity and tunnel endpoint. Fed by local endpoints, the KvStore and policy
 * CIDRs; written to the datapath's LPM map in incremental batches.
 */
export interface IpCache {
  /**
   * Applies a batch; returns once the datapath map reflects it. Subscribers get what changed
   * for the datapath: an upsert shadowed by a more authoritative source is not in it, a delete
   * that uncovers a less authoritative entry shows as that entry's upsert.
   */
  apply(delta: IpCacheDelta): Promise<void>;
  /** Longest-prefix match, as the datapath would do it. */
  lookup(ip: IpAddress): IpCacheEntry | undefined;
  list(): readonly IpCacheEntry[];
  /** Every batch from now on. */
  subscribe(listener: (delta: IpCacheDelta) => void): Unsubscribe;
}
