// The writer's prefix set against the policy's meaning: a JS model of the datapath's two LPM
// lookups (+ deny from either wins) must give the verdict of evaluating the raw entries.
import fc from 'fast-check';
import type { PolicyEntry, PolicyKey } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { POLICY_FLAGS, POLICY_PREFIX_FULL } from '../maps/policy.js';
import { ANY_PROTOCOL_WITH_PORT, describePrefix, keyPrefixes, policyPrefixes, portRangePrefixes, prefixContains, type PolicyPrefix, type PolicyPrefixEntry } from './prefixes.js';

type Raw = readonly [PolicyKey, PolicyEntry];
type Verdict = 'allow' | 'deny' | 'none';
interface Packet {
  identity: number;
  direction: 'ingress' | 'egress';
  protocol: number;
  port: number;
}

const DIR = { ingress: 0, egress: 1 } as const;

/** The policy's meaning: deny if any matching deny, else allow if any matching allow. */
function semantic(entries: readonly Raw[], p: Packet): Verdict {
  const matches = entries.filter(([k]) => {
    if (k.direction !== p.direction || (k.identity !== 0 && k.identity !== p.identity)) return false;
    if (k.protocol === 0 && k.port === 0) return true;
    if (k.protocol === 0 ? !ANY_PROTOCOL_WITH_PORT.includes(p.protocol) : k.protocol !== p.protocol) return false;
    return k.port === 0 || (p.port >= k.port && p.port <= Math.max(k.port, k.endPort));
  });
  if (matches.some(([, e]) => e.verdict === 'deny')) return 'deny';
  return matches.length > 0 ? 'allow' : 'none';
}

/** bpf/lib/policy.h on a JS LPM: longest prefix per identity, deny from either wins. */
function datapath(prefixes: Map<string, PolicyPrefixEntry>, p: Packet): Verdict {
  const packetKey: PolicyPrefix = { direction: DIR[p.direction], identity: 0, prefixlen: POLICY_PREFIX_FULL, protocol: p.protocol, dport: p.port };
  const longest = (identity: number): PolicyPrefixEntry | undefined => {
    let best: PolicyPrefixEntry | undefined;
    for (const e of prefixes.values()) {
      if (!prefixContains(e.prefix, { ...packetKey, identity })) continue;
      if (!best || e.prefix.prefixlen > best.prefix.prefixlen) best = e;
    }
    return best;
  };
  const found = [longest(p.identity), p.identity === 0 ? undefined : longest(0)].filter((e) => e !== undefined);
  if (found.some((e) => e.value.flags & POLICY_FLAGS.deny)) return 'deny';
  return found.length > 0 ? 'allow' : 'none';
}

const key = (k: Partial<PolicyKey>): PolicyKey => ({ identity: 0, direction: 'ingress', protocol: 6, port: 0, endPort: 0, ...k });
const allow: PolicyEntry = { verdict: 'allow', proxyPort: 0, derivedFrom: ['r'] };
const deny: PolicyEntry = { verdict: 'deny', proxyPort: 0, derivedFrom: ['r'] };

describe('port ranges → aligned prefixes', () => {
  it('covers exactly the range with the fewest prefixes', () => {
    expect(portRangePrefixes(80, 80)).toEqual([{ port: 80, bits: 16 }]);
    expect(portRangePrefixes(1024, 2047)).toEqual([{ port: 1024, bits: 6 }]);
    expect(portRangePrefixes(1, 65535)).toHaveLength(16);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 3000 }), (from, len) => {
        const to = Math.min(65535, from + len);
        const blocks = portRangePrefixes(from, to);
        let next = from;
        for (const b of blocks) {
          const size = 2 ** (16 - b.bits);
          expect(b.port).toBe(next);
          expect(b.port % size).toBe(0);
          next += size;
        }
        expect(next - 1).toBe(to);
        expect(blocks.length).toBeLessThanOrEqual(30);
      }),
    );
  });

  it('a prefix reads back as its range', () => {
    const [p] = keyPrefixes(key({ port: 8080, endPort: 8087 }));
    expect(p).toMatchObject({ prefixlen: 93, dport: 8080 });
    expect(describePrefix(p as PolicyPrefix)).toEqual({ protocol: 6, port: 8080, endPort: 8087 });
    expect(describePrefix(keyPrefixes(key({}))[0] as PolicyPrefix)).toEqual({ protocol: 6, port: 0, endPort: 0 });
  });
});

describe('policyPrefixes', () => {
  it('a port without a protocol stands for TCP, UDP and SCTP; no port and no protocol is one /64', () => {
    expect(keyPrefixes(key({ protocol: 0, port: 53 })).map((p) => p.protocol)).toEqual([6, 17, 132]);
    expect(keyPrefixes(key({ protocol: 0 }))).toEqual([{ direction: 0, identity: 0, prefixlen: 64, protocol: 0, dport: 0 }]);
  });

  it('keeps deny for a prefix both allowed and denied, and drops allows nested in a deny', () => {
    const out = policyPrefixes([
      [key({ identity: 7, port: 80 }), allow],
      [key({ identity: 7, port: 80 }), deny],
      [key({ identity: 7, port: 1000, endPort: 1003 }), deny],
      [key({ identity: 7, port: 1001 }), allow],
      [key({ identity: 8, port: 1001 }), allow],
    ]);
    const entries = [...out.values()].map((e) => ({ identity: e.prefix.identity, ...describePrefix(e.prefix), deny: !!(e.value.flags & POLICY_FLAGS.deny) }));
    expect(entries).toEqual(
      expect.arrayContaining([
        { identity: 7, protocol: 6, port: 80, endPort: 80, deny: true },
        { identity: 7, protocol: 6, port: 1000, endPort: 1003, deny: true },
        { identity: 8, protocol: 6, port: 1001, endPort: 1001, deny: false },
      ]),
    );
    expect(entries).toHaveLength(3);
  });

  it('names the bad field of a bad entry', () => {
    expect(() => policyPrefixes([[key({ port: 70000 }), allow]])).toThrow(/entries\[0\]\.key\.port: must be an integer in 0\.\.65535/);
    expect(() => policyPrefixes([[key({}), allow], [key({ port: 90, endPort: 80 }), allow]])).toThrow(/entries\[1\]\.key\.endPort: must be an integer in 90\.\.65535/);
    expect(() => policyPrefixes([[key({ direction: 'up' as never }), allow]])).toThrow(/entries\[0\]\.key\.direction/);
  });

  it('LPM lookups on the prefixes + deny-from-either equal the semantic verdict (property)', () => {
    const identities = [0, 5, 6];
    const protocols = [0, 1, 6, 17, 132];
    // Ports from a small window so that random entries and packets overlap often.
    const port = fc.integer({ min: 0, max: 40 });
    const rawEntry = fc
      .record({
        identity: fc.constantFrom(...identities),
        direction: fc.constantFrom('ingress' as const, 'egress' as const),
        protocol: fc.constantFrom(...protocols),
        port,
        span: fc.integer({ min: 0, max: 20 }),
        deny: fc.boolean(),
      })
      .map(({ span, deny: d, ...k }): Raw => [{ ...k, endPort: k.port === 0 ? 0 : k.port + span }, d ? deny : allow]);
    const packet = fc.record({
      identity: fc.constantFrom(5, 6, 9),
      direction: fc.constantFrom('ingress' as const, 'egress' as const),
      protocol: fc.constantFrom(1, 6, 17, 132, 47),
      port: fc.integer({ min: 1, max: 64 }),
    });
    fc.assert(
      fc.property(fc.array(rawEntry, { maxLength: 12 }), fc.array(packet, { minLength: 1, maxLength: 20 }), (entries, packets) => {
        const prefixes = policyPrefixes(entries);
        for (const p of packets) expect(datapath(prefixes, p)).toBe(semantic(entries, p));
      }),
      { numRuns: 400 },
    );
  });
});
