import type { Cidr, IpAddress, IpFamily } from '../net.js';

/** One leased address. */
export interface IpamLease {
  readonly ip: IpAddress;
  readonly family: IpFamily;
  /** The pool (pod CIDR) it came from. */
  readonly pool: Cidr;
  /** Gateway a pod routes through for this pool. */
  readonly gateway: IpAddress;
  /** Who holds it: an endpoint id or container id. */
  readonly owner: string;
}

/** A pod CIDR and how much of it is in use. */
export interface IpamPool {
  readonly cidr: Cidr;
  readonly family: IpFamily;
  readonly capacity: number;
  readonly used: number;
}

/**
 * Allocates pod addresses from this node's CIDRs. The default (libs/ipam) is host-scope:
 * no coordination with other nodes, leases persisted in the state directory.
 */
export interface Ipam {
  /** The next free address of `family`; rejects with an exhaustion error naming the pool. */
  allocateNext(owner: string, family?: IpFamily): Promise<IpamLease>;
  /** A specific address (restoring an endpoint, say); rejects if taken or outside every pool. */
  allocate(ip: IpAddress, owner: string): Promise<IpamLease>;
  /** Releases an address; returns false if it was not leased. */
  release(ip: IpAddress): Promise<boolean>;
  /** Every current lease. */
  leases(): readonly IpamLease[];
  /** Every pool with its usage. */
  pools(): readonly IpamPool[];
}
