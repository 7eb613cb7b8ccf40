import type { Cidr, IpAddress, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/** Where an ipcache entry came from; a more authoritative source wins on conflict. */
export type IpCacheSource = 'local' | 'kvstore' | 'k8s' | 'generated' | 'custom';

/** One IP or prefix and what the datapath needs to know about it. */
export interface IpCacheEntry {
  readonly prefix: Cidr;
  readonly identity: NumericIdentity;
  /** The node IP to tunnel to, for remote pods in overlay modes. */
  readonly tunnelEndpoint?: IpAddress;
  /** The node that owns the address, if any. */
  readonly node?: string;
  readonly source: IpCacheSource;
}

/** Changes applied in one batch. */
export interface IpCacheDelta {
  readonly upserts: readonly IpCacheEntry[];
  readonly deletes: readonly Cidr[];
}

/**
 * IP/CIDR → identity and tunnel endpoint. Fed by local endpoints, the KvStore and policy
 * CIDRs; written to the datapath's LPM map in incremental batches.
 */
export interface IpCache {
  /** Applies a batch; returns once the datapath map reflects it. */
  apply(delta: IpCacheDelta): Promise<void>;
  /** Longest-prefix match, as the datapath would do it. */
  lookup(ip: IpAddress): IpCacheEntry | undefined;
  list(): readonly IpCacheEntry[];
  /** Every batch from now on. */
  subscribe(listener: (delta: IpCacheDelta) => void): Unsubscribe;
}
