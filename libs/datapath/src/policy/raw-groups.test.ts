// RawGroups against a plain Map of keys: sets, replacements and deletes, groups growing past the
// flat-array size into a Map and shrinking to nothing.
import fc from 'fast-check';
import type { PolicyEntry, PolicyKey } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { RawGroups } from './raw-groups.js';

const keyId = (k: PolicyKey): string => `${k.direction}/${k.identity}/${k.protocol}/${k.port}/${k.endPort}`;
const DIR = { ingress: 0, egress: 1 } as const;

describe('RawGroups', () => {
  it('holds what a Map of keys holds, grouped by direction and identity (property)', () => {
    const key = fc.record({
      identity: fc.constantFrom(0, 7, 2 ** 24 + 1, 2 ** 32 - 1),
      direction: fc.constantFrom('ingress' as const, 'egress' as const),
      protocol: fc.constantFrom(0, 6, 17, 255),
      port: fc.integer({ min: 0, max: 30 }),
      endPort: fc.constantFrom(0, 30, 65535),
    });
    const op = fc.record({ key, del: fc.boolean(), verdict: fc.constantFrom('allow' as const, 'deny' as const) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const raw = new RawGroups();
        const model = new Map<string, readonly [PolicyKey, PolicyEntry]>();
        for (const { key: k, del, verdict } of ops) {
          if (del) expect(raw.delete(DIR[k.direction], k)).toBe(model.delete(keyId(k)));
          else {
            const entry: PolicyEntry = { verdict, proxyPort: 0, derivedFrom: ['r'] };
            raw.set(DIR[k.direction], k, entry);
            model.set(keyId(k), [k, entry]);
          }
        }
        const held = new Map<string, readonly [PolicyKey, PolicyEntry]>();
        for (const [direction, identity] of raw.groups()) {
          const entries = raw.entries(direction, identity);
          expect(entries.length).toBeGreaterThan(0);
          for (const e of entries) held.set(keyId(e[0]), e);
        }
        expect(held).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });

  it('forgets a group whose last entry goes, and clears', () => {
    const raw = new RawGroups();
    const k: PolicyKey = { identity: 9, direction: 'egress', protocol: 6, port: 80, endPort: 80 };
    raw.set(1, k, { verdict: 'allow', proxyPort: 0, derivedFrom: ['r'] });
    expect([...raw.groups()]).toEqual([[1, 9]]);
    expect(raw.delete(1, k)).toBe(true);
    expect([...raw.groups()]).toEqual([]);
    raw.set(0, { ...k, direction: 'ingress' }, { verdict: 'deny', proxyPort: 0, derivedFrom: ['r'] });
    raw.clear();
    expect(raw.entries(0, 9)).toEqual([]);
  });
});
