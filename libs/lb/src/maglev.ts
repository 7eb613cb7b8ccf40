/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), as Cilium uses it for its load
 * balancer: every backend gets a permutation of the table's M slots (an offset and a skip
 * from two hashes of its address and port), and the backends take turns claiming the next free
 * slot of their permutation until the table is full. The table depends only on the backends'
 * addresses, ports and weights, the table size and the seed — not on the order they are listed
 * in or on any node-local id — so every node builds the same table for the same backends, and a
 * flow hashed to a slot reaches the same backend whichever node it enters. Removing one backend
 * moves few of the other backends' slots.
 */

/** Table sizes Cilium offers (`--bpf-lb-maglev-table-size`); any prime in range is accepted. */
export const MAGLEV_TABLE_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
/** Cilium's default M. */
export const MAGLEV_DEFAULT_TABLE_SIZE = 16381;
export const MAGLEV_MIN_TABLE_SIZE = 251;
export const MAGLEV_MAX_TABLE_SIZE = 131071;

/** One backend as Maglev sees it: its name (`address:port/protocol`) and weight (0: no slots). */
export interface MaglevBackend {
  readonly key: string;
  readonly weight: number;
}

/** Whether `n` is prime (trial division: table sizes are small). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Why `size` cannot be a Maglev table size, or undefined when it can. */
export function maglevTableSizeProblem(size: number): string | undefined {
  if (!Number.isInteger(size) || size < MAGLEV_MIN_TABLE_SIZE || size > MAGLEV_MAX_TABLE_SIZE) {
    return `must be an integer from ${MAGLEV_MIN_TABLE_SIZE} to ${MAGLEV_MAX_TABLE_SIZE}, got ${size}`;
  }
  if (!isPrime(size)) return `must be a prime (e.g. ${MAGLEV_TABLE_SIZES.join(', ')}), got ${size}`;
  return undefined;
}

const encoder = new TextEncoder();

/** MurmurHash3 x86 32-bit of `data` with `seed`. */
export function murmur3(data: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const n = data.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    let k = data[blocks]!;
    if (tail > 1) k ^= data[blocks + 1]! << 8;
    if (tail > 2) k ^= data[blocks + 2]! << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The second hash's seed, derived from the configured one. */
const SKIP_SEED_MIX = 0x9e3779b9;

/**
 * Each backend's number of slots: `size` split in proportion to the weights by largest
 * remainder (ties to the earlier backend), so every share is within one slot of exact and the
 * shares add up to `size`. Equal weights: the first `size % n` backends get one slot more, as
 * classic Maglev's turns give them.
 */
function quotas(weights: Float64Array, size: number): Float64Array {
  const n = weights.length;
  let total = 0;
  for (let j = 0; j < n; j++) total += weights[j]!;
  const q = new Float64Array(n);
  const rest: Array<{ j: number; r: number }> = [];
  let given = 0;
  for (let j = 0; j < n; j++) {
    const exact = (size * weights[j]!) / total;
    q[j] = Math.floor(exact);
    given += q[j]!;
    rest.push({ j, r: exact - q[j]! });
  }
  rest.sort((a, b) => b.r - a.r || a.j - b.j);
  for (let k = 0; k < size - given; k++) q[rest[k]!.j]!++;
  return q;
}

/**
 * The lookup table: slot → index into `backends` (-1 for every slot when no backend has a
 * weight). Backends with weight 0 get no slot; the others take turns, each until it holds its
 * share of the slots (in proportion to its weight, within one slot; equal weights: classic
 * Maglev). `size` must be a prime (see {@link maglevTableSizeProblem}).
 */
export function maglevTable(backends: readonly MaglevBackend[], size: number, seed = 0): Int32Array {
  const problem = maglevTableSizeProblem(size);
  if (problem) throw new RangeError(`maglev table size ${problem}`);
  const table = new Int32Array(size).fill(-1);
  // The turn order is the backends' names, sorted: independent of how they were listed.
  const order = backends
    .map((b, i) => ({ i, key: b.key, weight: b.weight }))
    .filter((b) => b.weight > 0)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
  const n = order.length;
  if (n === 0) return table;
  const pos = new Int32Array(n);
  const skip = new Int32Array(n);
  const weight = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const bytes = encoder.encode(order[j]!.key);
    pos[j] = murmur3(bytes, seed) % size;
    skip[j] = (murmur3(bytes, (seed ^ SKIP_SEED_MIX) >>> 0) % (size - 1)) + 1;
    weight[j] = order[j]!.weight;
  }
  const left = quotas(weight, size);
  // The backends still below their share, as a ring in turn order.
  const next = new Int32Array(n);
  for (let j = 0; j < n; j++) next[j] = j + 1 === n ? 0 : j + 1;
  let prev = n - 1;
  let turn = 0;
  for (let filled = 0; filled < size; filled++) {
    while (left[turn] === 0) {
      turn = next[turn]!;
      next[prev] = turn;
    }
    let c = pos[turn]!;
    while (table[c] !== -1) {
      c += skip[turn]!;
      if (c >= size) c -= size;
    }
    table[c] = order[turn]!.i;
    c += skip[turn]!;
    pos[turn] = c >= size ? c - size : c;
    left[turn]!--;
    prev = turn;
    turn = next[turn]!;
  }
  return table;
}
