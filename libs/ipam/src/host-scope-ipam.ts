import type { IpAddress, IpamLease, IpamPool, IpFamily, Ipam } from '@cilia/core';
import { parseAddress, parsePrefix } from './cidr.js';
import { LeaseFile } from './lease-file.js';
import { Pool } from './pool.js';

/** No free address is left in any pool of the requested family. */
export class IpamExhaustedError extends Error {
  constructor(family: IpFamily, pools: readonly IpamPool[]) {
    const detail = pools.map((p) => `${p.cidr}: ${p.used} of ${p.capacity} leased`).join(', ');
    super(pools.length === 0 ? `no ${family} pool is configured` : `${family} pools are exhausted (${detail})`);
    this.name = 'IpamExhaustedError';
  }
}

/**
 * The default `Ipam`: allocates from this node's pod CIDRs with no coordination between
 * nodes, and keeps leases in `<stateDir>/ipam/leases.json` so they survive restarts.
 */
export class HostScopeIpam implements Ipam {
  readonly #pools: Pool[];
  readonly #leases = new Map<bigint, IpamLease>();
  readonly #file: LeaseFile;

  /** Restores the leases stored in `leaseFile`; a lease outside every configured pool is an error. */
  constructor(podCidrs: readonly string[], leaseFile: string) {
    this.#pools = podCidrs.map((c) => new Pool(parsePrefix(c)));
    this.#file = new LeaseFile(leaseFile);
    for (const lease of this.#file.read()) {
      const { value } = parseAddress(lease.ip);
      const pool = this.#poolOf(value);
      const refusal = pool ? pool.refusal(value) : `is outside every pool (${podCidrs.join(', ')})`;
      if (refusal) throw new Error(`cannot restore IPAM lease of ${lease.ip} for ${lease.owner}: it ${refusal}; was the pod CIDR changed?`);
      pool!.take(value);
      this.#leases.set(value, lease);
    }
  }

  async allocateNext(owner: string, family: IpFamily = 'ipv4'): Promise<IpamLease> {
    const pools = this.#pools.filter((p) => p.prefix.family === family);
    for (const pool of pools) {
      const value = pool.next();
      if (value !== undefined) return this.#lease(pool, value, owner);
    }
    throw new IpamExhaustedError(family, pools.map((p) => p.describe()));
  }

  async allocate(ip: IpAddress, owner: string): Promise<IpamLease> {
    const { value } = parseAddress(ip);
    const pool = this.#poolOf(value);
    if (!pool) throw new Error(`${ip} is outside every pool (${this.#pools.map((p) => p.prefix.cidr).join(', ')})`);
    const refusal = pool.refusal(value);
    if (refusal) {
      const holder = this.#leases.get(value);
      throw new Error(`${ip} ${refusal}${holder ? ` by ${holder.owner}` : ''}`);
    }
    return this.#lease(pool, value, owner);
  }

  async release(ip: IpAddress): Promise<boolean> {
    const { value } = parseAddress(ip);
    const lease = this.#leases.get(value);
    if (!lease) return false;
    this.#leases.delete(value);
    this.#poolOf(value)!.release(value);
    this.#persist(() => {
      this.#leases.set(value, lease);
      this.#poolOf(value)!.take(value);
    });
    return true;
  }

  leases(): readonly IpamLease[] {
    return [...this.#leases.values()];
  }

  pools(): readonly IpamPool[] {
    return this.#pools.map((p) => p.describe());
  }

  #lease(pool: Pool, value: bigint, owner: string): IpamLease {
    const lease: IpamLease = { ip: pool.take(value), family: pool.prefix.family, pool: pool.prefix.cidr, gateway: pool.gateway, owner };
    this.#leases.set(value, lease);
    this.#persist(() => {
      this.#leases.delete(value);
      pool.release(value);
    });
    return lease;
  }

  /** Writes the leases; on failure undoes the change in memory, so memory never claims what disk lost. */
  #persist(undo: () => void): void {
    try {
      this.#file.write(this.leases());
    } catch (err) {
      undo();
      throw new Error(`cannot persist IPAM leases to ${this.#file.path}: ${(err as Error).message}`);
    }
  }

  #poolOf(value: bigint): Pool | undefined {
    return this.#pools.find((p) => p.contains(value));
  }
}
