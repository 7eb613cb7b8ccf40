import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPrime, MAGLEV_DEFAULT_TABLE_SIZE, MAGLEV_TABLE_SIZES, maglevTable, maglevTableSizeProblem, murmur3, type MaglevBackend } from './maglev.js';

/** Distinct backends `10.a.b.c:port`. */
const backendSet = (min: number, max: number) =>
  fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 65535 })), {
    minLength: min,
    maxLength: max,
    selector: ([a, b, p]) => `${a}.${b}:${p}`,
  }).map((list) => list.map(([a, b, p]): MaglevBackend => ({ key: `10.1.${a}.${b}:${p}/TCP`, weight: 1 })));

/** The table as backend keys, so tables of differently ordered lists compare. */
const keys = (backends: readonly MaglevBackend[], table: Int32Array) => Array.from(table, (i) => (i < 0 ? undefined : backends[i]!.key));

const counts = (table: Int32Array, n: number) => {
  const c = new Array<number>(n).fill(0);
  for (const i of table) c[i]!++;
  return c;
};

describe('maglev', () => {
  it('hashes as MurmurHash3 x86 32 does', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    // Reference values of the canonical implementation.
    expect(murmur3(enc(''), 0)).toBe(0);
    expect(murmur3(enc(''), 1)).toBe(0x514e28b7);
    expect(murmur3(enc('hello'), 0)).toBe(0x248bfa47);
    expect(murmur3(enc('The quick brown fox jumps over the lazy dog'), 0)).toBe(0x2e4ff723);
  });

  it('takes only prime table sizes in range', () => {
    for (const m of MAGLEV_TABLE_SIZES) expect(maglevTableSizeProblem(m)).toBeUndefined();
    expect(maglevTableSizeProblem(16380)).toMatch(/prime/);
    expect(maglevTableSizeProblem(7)).toMatch(/from 251/);
    expect(isPrime(65521)).toBe(true);
    expect(() => maglevTable([{ key: 'a', weight: 1 }], 1000)).toThrow(/maglev table size must be a prime/);
  });

  it('fills every slot, giving equal backends equal shares (within one slot)', () => {
    fc.assert(
      fc.property(backendSet(1, 120), fc.constantFrom(251, 1021, 4093), fc.integer({ min: 0, max: 0xffffffff }), (backends, m, seed) => {
        const table = maglevTable(backends, m, seed);
        expect(table.includes(-1)).toBe(false);
        const c = counts(table, backends.length);
        expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 60 },
    );
  });

  it('gives weighted backends shares in proportion to their weights (within one slot), and weight 0 none', () => {
    fc.assert(
      fc.property(backendSet(2, 40), fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 40, maxLength: 40 }), (set, ws) => {
        const backends = set.map((b, i) => ({ ...b, weight: ws[i]! }));
        const m = 4093;
        const table = maglevTable(backends, m);
        const total = backends.reduce((s, b) => s + b.weight, 0);
        const c = counts(table, backends.length);
        backends.forEach((b, i) => {
          if (total === 0) return expect(c[i]).toBe(0);
          expect(Math.abs(c[i]! - (m * b.weight) / total)).toBeLessThan(1);
        });
        expect(table.includes(-1)).toBe(total === 0);
      }),
      { numRuns: 60 },
    );
  });

  it('builds the same table whatever order the backends are listed in (every node agrees)', () => {
    fc.assert(
      fc.property(
        backendSet(1, 60).chain((b) => fc.tuple(fc.constant(b), fc.shuffledSubarray(b, { minLength: b.length, maxLength: b.length }))),
        fc.integer({ min: 0, max: 0xffffffff }),
        ([a, b], seed) => {
          expect(keys(b, maglevTable(b, 1021, seed))).toEqual(keys(a, maglevTable(a, 1021, seed)));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('another seed gives another table', () => {
    const backends = Array.from({ length: 10 }, (_, i) => ({ key: `10.0.0.${i}:80/TCP`, weight: 1 }));
    expect(keys(backends, maglevTable(backends, 251, 1))).not.toEqual(keys(backends, maglevTable(backends, 251, 2)));
  });

  it(`removing 1 of 100 backends moves at most 3 % of the flows that were not on it (M = ${MAGLEV_DEFAULT_TABLE_SIZE})`, () => {
    fc.assert(
      fc.property(backendSet(100, 100), fc.nat(99), fc.integer({ min: 0, max: 0xffffffff }), (backends, gone, seed) => {
        const before = keys(backends, maglevTable(backends, MAGLEV_DEFAULT_TABLE_SIZE, seed));
        const rest = backends.filter((_, i) => i !== gone);
        const after = keys(rest, maglevTable(rest, MAGLEV_DEFAULT_TABLE_SIZE, seed));
        const removed = backends[gone]!.key;
        let stayed = 0;
        let moved = 0;
        before.forEach((k, slot) => {
          if (k === removed) return;
          stayed++;
          if (after[slot] !== k) moved++;
        });
        expect(moved / stayed).toBeLessThanOrEqual(0.03);
        // Every flow of the removed backend went somewhere.
        expect(after.includes(removed)).toBe(false);
      }),
      { numRuns: 25 },
    );
  });
});
