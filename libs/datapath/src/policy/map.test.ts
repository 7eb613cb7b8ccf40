// PolicyMap on unpinned maps: an entry it cannot write fails the endpoint closed, names the
// entry, and holds it closed exactly until that key is deleted or gets a valid entry.
import { BpfMap, codec } from '@cilia/bpf';
import type { Logger, PolicyEntry, PolicyKey } from '@cilia/core';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyEndpointValue, PolicyMapKey, PolicyMapValue, PolicyModeCode, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import { PolicyMap } from './map.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };
const key = (k: Partial<PolicyKey>): PolicyKey => ({ identity: 5, direction: 'ingress', protocol: 6, port: 80, endPort: 80, ...k });
const allow: PolicyEntry = { verdict: 'allow', proxyPort: 0, derivedFrom: ['r'] };
const enforced = { ingress: true, egress: false };

describe('PolicyMap with an invalid entry', () => {
  const policy = BpfMap.create<PolicyMapKeyValue, PolicyMapValueValue>(
    { type: 'lpm_trie', name: 'cil_pol_inval', keySize: 16, valueSize: 8, maxEntries: 64, flags: 1 },
    { key: PolicyMapKey as never, value: PolicyMapValue as never },
  );
  const endpoints = BpfMap.create<number, PolicyEndpointRecord>({ type: 'hash', name: 'cil_pep_inval', keySize: 4, valueSize: 8, maxEntries: 8 }, { key: codec.u32 as never, value: PolicyEndpointValue as never });
  afterAll(() => [policy, endpoints].forEach((m) => m.close()));

  it('fails closed naming it, keeps the rest, and recovers when the key is deleted or fixed', () => {
    const map = new PolicyMap({ policy, endpoints, logger: silent });
    expect(map.sync(1, [[key({}), allow], [key({ port: 443, endPort: 443 }), allow]], enforced, 1)).toMatchObject({ failClosed: false, written: 2 });
    // A valid key with a bad entry replaces the key's valid one; a bad key is kept aside.
    const bad = map.apply(1, { revision: 2, upserts: [[key({}), { ...allow, proxyPort: 70000 }], [key({ port: 70000 }), allow]], deletes: [] });
    expect(bad).toEqual({ failClosed: true, reason: expect.stringMatching(/^invalid policy entry: upserts\[0\]\.entry\.proxyPort: must be an integer in 0\.\.65535, got 70000 \(and 1 more\)$/) });
    expect(endpoints.lookup(1)).toMatchObject({ ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll, revision: 2 });
    // An empty delta cannot heal it; the revision still moves.
    expect(map.apply(1, { revision: 3, upserts: [], deletes: [] }).failClosed).toBe(true);
    expect(endpoints.lookup(1)?.revision).toBe(3);
    expect(map.apply(1, { revision: 4, upserts: [], deletes: [key({ port: 70000 })] }).failClosed).toBe(true);
    // The last bad entry fixed: realized again, port 80 written as the fixed entry says.
    expect(map.apply(1, { revision: 5, upserts: [[key({}), allow]], deletes: [] })).toEqual({ failClosed: false, written: 0, deleted: 0 });
    expect(map.failClosed().size).toBe(0);
    expect(map.dump(1)).toMatchObject({ ingress: 'enforce', revision: 5, entries: [{ port: 80 }, { port: 443 }] });
    // Deleting a key with a bad entry heals too, and takes the key's old valid entry with it.
    expect(map.apply(1, { revision: 6, upserts: [[key({}), { ...allow, verdict: 'maybe' as never }]], deletes: [] }).failClosed).toBe(true);
    expect(map.apply(1, { revision: 7, upserts: [], deletes: [key({})] })).toEqual({ failClosed: false, written: 0, deleted: 1 });
    expect(map.dump(1)?.entries.map((e) => e.port)).toEqual([443]);
    map.remove(1);
    expect([...policy.keys()]).toEqual([]);
  });
});
