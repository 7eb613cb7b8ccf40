// PolicyMap applies a delta by recomputing only the (direction, identity) groups it touches;
// whatever the sequence of deltas (empty ones, overflows of the quota and recoveries among
// them), the maps must end up holding what one sync of the final state writes, which is what
// policyPrefixes (checked against the policy's meaning in prefixes.test.ts) says.
import fc from 'fast-check';
import { BpfMap, codec } from '@cilia/bpf';
import type { Logger, PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { PolicyEndpointValue, PolicyMapKey, PolicyMapValue, PolicyModeCode, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import { PolicyMap } from './map.js';
import { policyPrefixes, prefixId } from './prefixes.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

type Raw = readonly [PolicyKey, PolicyEntry];
const keyId = (k: PolicyKey): string => `${k.direction}/${k.identity}/${k.protocol}/${k.port}/${k.endPort}`;

const entryOf = (verdict: 'allow' | 'deny', proxyPort: number, rule: string): PolicyEntry => ({ verdict, proxyPort, derivedFrom: [rule] });
const rawEntry = fc
  .record({
    identity: fc.constantFrom(0, 5, 6, 300),
    direction: fc.constantFrom('ingress' as const, 'egress' as const),
    protocol: fc.constantFrom(0, 1, 6, 17),
    port: fc.integer({ min: 0, max: 40 }),
    span: fc.integer({ min: 0, max: 20 }),
    verdict: fc.constantFrom('allow' as const, 'allow' as const, 'deny' as const),
    proxyPort: fc.constantFrom(0, 0, 0, 15001),
    rule: fc.constantFrom('r1', 'r2'),
  })
  .map(({ span, verdict, proxyPort, rule, ...k }): Raw => [{ ...k, endPort: k.port === 0 ? 0 : k.port + span }, entryOf(verdict, proxyPort, rule)]);

/** One revision: entries to set, indexes of current entries to delete, maybe new enforcement. */
const step = fc.record({
  upserts: fc.array(rawEntry, { maxLength: 6 }),
  deletes: fc.array(fc.nat(), { maxLength: 4 }),
  enforcement: fc.option(fc.record({ ingress: fc.boolean(), egress: fc.boolean() }), { nil: undefined }),
});

interface Maps {
  policy: BpfMap<PolicyMapKeyValue, PolicyMapValueValue>;
  endpoints: BpfMap<number, PolicyEndpointRecord>;
}

/** What cilia_policy holds for endpoint `id`, by prefix id. */
function content(maps: Maps, id: number): Map<string, PolicyMapValueValue> {
  const out = new Map<string, PolicyMapValueValue>();
  for (const [k, v] of maps.policy.entries()) if (k.endpointId === id) out.set(prefixId(k), v);
  return out;
}

/** Unpinned maps of the policy datapath's shape (`lpmSize` prefixes), closed by `close`. */
function openMaps(tag: string, lpmSize: number): Maps & { close(): void } {
  const policy = BpfMap.create<PolicyMapKeyValue, PolicyMapValueValue>(
    { type: 'lpm_trie', name: `cil_pol_${tag}`, keySize: 16, valueSize: 8, maxEntries: lpmSize, flags: 1 },
    { key: PolicyMapKey as never, value: PolicyMapValue as never },
  );
  const endpoints = BpfMap.create<number, PolicyEndpointRecord>({ type: 'hash', name: `cil_pep_${tag}`, keySize: 4, valueSize: 8, maxEntries: 64 }, { key: codec.u32 as never, value: PolicyEndpointValue as never });
  return { policy, endpoints, close: () => [policy, endpoints].forEach((m) => m.close()) };
}

/** Applies `s` to the model `state` and returns the delta as the repository sends it: net changes, a key at most once. */
function advance(state: Map<string, Raw>, s: { upserts: Raw[]; deletes: number[] }): { upserts: Raw[]; deletes: PolicyKey[] } {
  const before = new Map(state);
  const current = [...state.keys()];
  for (const n of s.deletes) if (current.length > 0) state.delete(current[n % current.length]!);
  for (const e of s.upserts) state.set(keyId(e[0]), e);
  return {
    upserts: [...state].filter(([id, e]) => before.get(id) !== e).map(([, e]) => e),
    deletes: [...before].filter(([id]) => !state.has(id)).map(([, e]) => e[0]),
  };
}

describe('PolicyMap: a sequence of apply() equals one sync() of the final state (property, real maps)', () => {
  it('holds for random deltas, empty ones and quota overflows included', () => {
    const maps = openMaps('prop', 8192);
    try {
      fc.assert(
        fc.property(
          fc.array(rawEntry, { maxLength: 8 }),
          fc.array(step, { minLength: 1, maxLength: 10 }),
          fc.constantFrom(6, 12, 16384),
          (initial, steps, quota) => {
            const writer = new PolicyMap({ policy: maps.policy, endpoints: maps.endpoints, maxEntriesPerEndpoint: quota, logger: silent });
            try {
              const state = new Map<string, Raw>();
              for (const e of initial) state.set(keyId(e[0]), e);
              let enforcement: PolicyEnforcement = { ingress: true, egress: false };
              writer.sync(1, [...state.values()], enforcement, 0);
              steps.forEach((s, i) => {
                const { upserts, deletes } = advance(state, s);
                const changed = s.enforcement && (s.enforcement.ingress !== enforcement.ingress || s.enforcement.egress !== enforcement.egress);
                if (s.enforcement) enforcement = s.enforcement;
                const delta: PolicyDelta = { revision: i + 1, upserts, deletes, ...(changed ? { enforcement } : {}) };
                writer.apply(1, delta);
              });
              const final = [...state.values()];
              const last = writer.sync(2, final, enforcement, steps.length);
              const expected = policyPrefixes(final);
              const fits = expected.size <= quota;
              expect(last.failClosed).toBe(!fits);
              expect(writer.failClosed().has(1)).toBe(!fits);
              const record = maps.endpoints.lookup(1);
              expect(record?.revision).toBe(steps.length);
              if (!fits) {
                expect(record).toMatchObject({ ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll });
                return;
              }
              expect(record).toEqual(maps.endpoints.lookup(2));
              const applied = content(maps, 1);
              expect(applied).toEqual(content(maps, 2));
              expect(applied).toEqual(new Map([...expected].map(([id, e]) => [id, e.value])));
              // What dump reads back is what the map holds.
              expect(writer.dump(1)?.entries).toEqual(writer.dump(2)?.entries);
            } finally {
              writer.remove(1);
              writer.remove(2);
            }
            expect(content(maps, 1).size + content(maps, 2).size).toBe(0);
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      maps.close();
    }
  });

  it('under write failures (a map too small) its mirror stays exact: deleting everything leaves nothing behind', () => {
    const maps = openMaps('tiny', 10);
    try {
      fc.assert(
        fc.property(fc.array(rawEntry, { maxLength: 6 }), fc.array(step, { minLength: 1, maxLength: 8 }), (initial, steps) => {
          const writer = new PolicyMap({ policy: maps.policy, endpoints: maps.endpoints, logger: silent });
          const state = new Map<string, Raw>(initial.map((e) => [keyId(e[0]), e]));
          writer.sync(1, [...state.values()], { ingress: true, egress: true }, 0);
          steps.forEach((s, i) => {
            const outcome = writer.apply(1, { revision: i + 1, ...advance(state, s) });
            // Failed or not, the record says what the endpoint does now.
            expect(maps.endpoints.lookup(1)?.ingress).toBe(outcome.failClosed ? PolicyModeCode.denyAll : PolicyModeCode.enforce);
            if (!outcome.failClosed) expect(content(maps, 1)).toEqual(new Map([...policyPrefixes([...state.values()])].map(([id, e]) => [id, e.value])));
          });
          const last = writer.apply(1, { revision: steps.length + 1, upserts: [], deletes: [...state.values()].map(([k]) => k) });
          expect(last).toMatchObject({ failClosed: false });
          expect(content(maps, 1).size).toBe(0);
          writer.remove(1);
        }),
        { numRuns: 150 },
      );
    } finally {
      maps.close();
    }
  });
});
