// PolicyMap against the real pinned maps of policy.o: what sync/apply write, what dump reads
// back, a second writer adopting the maps (agent restart) and writing only differences, and
// failing closed when an endpoint exceeds its quota or the map refuses a write.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject, codec } from '@cilia/bpf';
import { makePinRoot, removePinRoot } from '@cilia/bpf/testing';
import type { Logger, PolicyEntry, PolicyKey } from '@cilia/core';
import { PolicyEndpointValue, PolicyMapKey, PolicyMapValue, PolicyModeCode } from '../../src/maps/index.js';
import { PolicyMap } from '../../src/policy/map.js';
import { objectPath } from './objects.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

const key = (k: Partial<PolicyKey>): PolicyKey => ({ identity: 0, direction: 'ingress', protocol: 6, port: 0, endPort: 0, ...k });
const allow: PolicyEntry = { verdict: 'allow', proxyPort: 0, derivedFrom: ['r1'] };
const deny: PolicyEntry = { verdict: 'deny', proxyPort: 0, derivedFrom: ['r2'] };
const enforced = { ingress: true, egress: false };

interface Loaded {
  readonly obj: BpfObject;
  writer(maxEntriesPerEndpoint?: number): PolicyMap;
  close(): void;
}

function load(pinRoot: string, maxEntries?: number): Loaded {
  const obj = BpfObject.open(objectPath('policy'), { pinRoot });
  if (maxEntries !== undefined) obj.setMaxEntries('cilia_policy', maxEntries);
  try {
    obj.load();
  } catch (err) {
    obj.close();
    throw err;
  }
  return {
    obj,
    writer: (maxEntriesPerEndpoint) =>
      new PolicyMap({
        policy: obj.map('cilia_policy', { key: PolicyMapKey, value: PolicyMapValue }),
        endpoints: obj.map('cilia_policy_endpoints', { key: codec.u32, value: PolicyEndpointValue }),
        maxEntriesPerEndpoint,
        logger: silent,
      }),
    close: () => obj.close(),
  };
}

describe('PolicyMap on the pinned maps', () => {
  let pinRoot: string;
  beforeAll(() => {
    pinRoot = makePinRoot('policy-map');
  });
  afterAll(() => removePinRoot(pinRoot));

  it('sync writes prefixes and the endpoint record; apply changes only what the delta touches; dump reads them back', () => {
    const gen = load(pinRoot);
    try {
      const map = gen.writer();
      const lpm = gen.obj.map('cilia_policy', { key: PolicyMapKey, value: PolicyMapValue });
      const records = gen.obj.map('cilia_policy_endpoints', { key: codec.u32, value: PolicyEndpointValue });

      const outcome = map.sync(
        11,
        [
          [key({ identity: 5, port: 80 }), allow],
          [key({ identity: 5, port: 1000, endPort: 1003 }), allow],
          [key({ identity: 0, protocol: 1, port: 8 }), allow],
        ],
        enforced,
        3,
      );
      expect(outcome).toEqual({ failClosed: false, written: 3, deleted: 0 });
      expect(records.lookup(11)).toEqual({ ingress: PolicyModeCode.enforce, egress: PolicyModeCode.allowAll, flags: 0, revision: 3 });
      expect([...lpm.keys()].filter((k) => k.endpointId === 11)).toHaveLength(3);

      expect(map.dump(11)).toEqual({
        ingress: 'enforce',
        egress: 'allow-all',
        revision: 3,
        entries: [
          { identity: 0, direction: 'ingress', protocol: 1, port: 8, endPort: 8, verdict: 'allow', proxyPort: 0 },
          { identity: 5, direction: 'ingress', protocol: 6, port: 80, endPort: 80, verdict: 'allow', proxyPort: 0 },
          { identity: 5, direction: 'ingress', protocol: 6, port: 1000, endPort: 1003, verdict: 'allow', proxyPort: 0 },
        ],
      });

      // A broader deny for identity 5 removes the allows nested in it.
      const applied = map.apply(11, {
        revision: 4,
        upserts: [[key({ identity: 5, port: 0 }), deny]],
        deletes: [key({ identity: 0, protocol: 1, port: 8 })],
        enforcement: { ingress: true, egress: true },
      });
      expect(applied).toEqual({ failClosed: false, written: 1, deleted: 3 });
      expect(map.dump(11)).toMatchObject({
        ingress: 'enforce',
        egress: 'enforce',
        revision: 4,
        entries: [{ identity: 5, protocol: 6, port: 0, endPort: 0, verdict: 'deny' }],
      });
      // Same state again: nothing to write.
      expect(map.apply(11, { revision: 4, upserts: [], deletes: [] })).toEqual({ failClosed: false, written: 0, deleted: 0 });
      expect(map.endpoints()).toContain(11);
      map.remove(11);
      expect(map.dump(11)).toBeUndefined();
      expect(records.lookup(11)).toBeUndefined();
      expect([...lpm.keys()].filter((k) => k.endpointId === 11)).toHaveLength(0);
    } finally {
      gen.close();
    }
  });

  it('a second writer (agent restart) adopts the maps and writes only differences, never flushing', () => {
    const entries: Array<readonly [PolicyKey, PolicyEntry]> = [
      [key({ identity: 6, port: 443 }), allow],
      [key({ identity: 0, direction: 'egress', protocol: 17, port: 53 }), allow],
    ];
    const first = load(pinRoot);
    try {
      expect(first.writer().sync(21, entries, { ingress: true, egress: true }, 9)).toMatchObject({ written: 2 });
    } finally {
      first.close();
    }

    const second = load(pinRoot);
    try {
      const map = second.writer();
      expect(map.endpoints()).toContain(21);
      // Read before any write: the previous agent's state, record included.
      expect(map.dump(21)).toMatchObject({ ingress: 'enforce', egress: 'enforce', revision: 9 });
      expect(map.dump(21)?.entries).toHaveLength(2);
      expect(map.sync(21, entries, { ingress: true, egress: true }, 9)).toEqual({ failClosed: false, written: 0, deleted: 0 });
      expect(map.sync(21, entries.slice(1), { ingress: true, egress: true }, 10)).toEqual({ failClosed: false, written: 0, deleted: 1 });
      map.remove(21);
    } finally {
      second.close();
    }
  });

  it('an endpoint over its quota fails closed (deny-all) and is restored once it fits', () => {
    const gen = load(pinRoot);
    try {
      const map = gen.writer(4);
      expect(map.sync(31, [[key({ identity: 5, port: 80 }), allow]], enforced, 1)).toMatchObject({ failClosed: false });
      // 1..65535 needs 16 prefixes.
      const big = map.sync(31, [[key({ identity: 5, port: 1, endPort: 65535 }), allow]], enforced, 2);
      expect(big).toEqual({ failClosed: true, reason: expect.stringMatching(/16 policy map entries exceed the per-endpoint quota of 4/) });
      expect(map.failClosed().get(31)).toMatch(/quota of 4/);
      expect(map.dump(31)).toMatchObject({ ingress: 'deny-all', egress: 'deny-all', revision: 2 });
      // Other endpoints are not affected.
      expect(map.sync(32, [[key({ identity: 5, port: 80 }), allow]], enforced, 2)).toMatchObject({ failClosed: false });

      expect(map.apply(31, { revision: 3, upserts: [[key({ identity: 5, port: 22 }), allow]], deletes: [key({ identity: 5, port: 1, endPort: 65535 })] })).toEqual({
        failClosed: false,
        written: 1,
        deleted: 1, // port 80 went with the sync of revision 2, which replaced the entries
      });
      expect(map.failClosed().has(31)).toBe(false);
      expect(map.dump(31)).toMatchObject({ ingress: 'enforce', egress: 'allow-all', revision: 3 });
      expect(map.dump(31)?.entries.map((e) => e.port)).toEqual([22]);
      map.remove(31);
      map.remove(32);
    } finally {
      gen.close();
    }
  });

  it('a write the map refuses (full) fails the endpoint closed', () => {
    const small = makePinRoot('policy-map-small');
    const gen = load(small, 4);
    try {
      const map = gen.writer();
      const many = Array.from({ length: 6 }, (_, i) => [key({ identity: 5, port: 100 + i * 2 }), allow] as const);
      const outcome = map.sync(41, many, enforced, 1);
      expect(outcome).toEqual({ failClosed: true, reason: expect.stringMatching(/writing the policy maps failed/) });
      expect(map.dump(41)).toMatchObject({ ingress: 'deny-all', egress: 'deny-all' });
      expect(map.dump(41)?.entries).toHaveLength(4);
      // Fits again: the endpoint is realized and the extra entries go.
      expect(map.sync(41, many.slice(0, 2), enforced, 2)).toEqual({ failClosed: false, written: 0, deleted: 2 });
      expect(map.dump(41)).toMatchObject({ ingress: 'enforce', revision: 2 });
    } finally {
      gen.close();
      removePinRoot(small);
    }
  });

  it('rejects an endpoint id outside 1..65535', () => {
    const gen = load(pinRoot);
    try {
      expect(() => gen.writer().sync(0, [], enforced, 1)).toThrow(/endpointId: must be an integer in 1\.\.65535, got 0/);
    } finally {
      gen.close();
    }
  });
});
