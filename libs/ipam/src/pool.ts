import type { IpamPool } from '@cilia/core';
import { fromBigInt, type Prefix } from './cidr.js';

/**
 * One pod CIDR. The network address, the gateway (first host address, the node's router IP on
 * the pod side) and, for IPv4, the broadcast address are never leased. Allocation walks forward
 * from the last address handed out, so a just-released address is not reused at once (stale
 * conntrack or ARP state would otherwise hit its next owner).
 */
export class Pool {
  readonly gateway: string;
  readonly #firstUsable: bigint;
  readonly #lastUsable: bigint;
  readonly #leased = new Set<bigint>();
  #cursor: bigint;

  constructor(readonly prefix: Prefix) {
    const broadcast = prefix.family === 'ipv4' ? 1n : 0n;
    this.#firstUsable = prefix.first + 2n;
    this.#lastUsable = prefix.last - broadcast;
    this.gateway = fromBigInt(prefix.first + 1n, prefix.family);
    this.#cursor = this.#lastUsable;
  }

  get capacity(): number {
    const n = this.#lastUsable - this.#firstUsable + 1n;
    return n > 0n ? Number(n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n) : 0;
  }

  get used(): number {
    return this.#leased.size;
  }

  contains(value: bigint): boolean {
    return value >= this.prefix.first && value <= this.prefix.last;
  }

  /** Why `value` cannot be leased, or undefined if it can. */
  refusal(value: bigint): string | undefined {
    if (value < this.#firstUsable || value > this.#lastUsable) return `is reserved in ${this.prefix.cidr} (network, gateway or broadcast address)`;
    if (this.#leased.has(value)) return 'is already leased';
    return undefined;
  }

  take(value: bigint): string {
    this.#leased.add(value);
    this.#cursor = value;
    return fromBigInt(value, this.prefix.family);
  }

  release(value: bigint): boolean {
    return this.#leased.delete(value);
  }

  /** The next free address after the cursor, wrapping once; undefined when full. */
  next(): bigint | undefined {
    if (this.used >= this.capacity) return undefined;
    let v = this.#cursor;
    for (;;) {
      v = v >= this.#lastUsable ? this.#firstUsable : v + 1n;
      if (!this.#leased.has(v)) return v;
      if (v === this.#cursor) return undefined;
    }
  }

  describe(): IpamPool {
    return { cidr: this.prefix.cidr, family: this.prefix.family, capacity: this.capacity, used: this.used };
  }
}
