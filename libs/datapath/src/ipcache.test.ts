import type { IpCacheDelta, IpCacheEntry, Logger } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { LocalIpCache, type IpCacheMapWriter } from './ipcache.js';
import { parsePrefix } from './prefix.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

class FakeMap implements IpCacheMapWriter {
  readonly entries = new Map<string, number>();
  batches = 0;
  write(upserts: readonly IpCacheEntry[], deletes: readonly string[]): void {
    this.batches++;
    for (const p of deletes) this.entries.delete(p);
    for (const e of upserts) this.entries.set(e.prefix, e.identity);
  }
  prefixes(): string[] {
    return [...this.entries.keys()];
  }
}

describe('LocalIpCache', () => {
  it('answers longest-prefix matches and canonicalises prefixes', async () => {
    const c = new LocalIpCache(silent);
    await c.apply({
      upserts: [
        { prefix: '0.0.0.0/0', identity: 2, source: 'generated' },
        { prefix: '10.1.2.77/24', identity: 100, source: 'custom' },
        { prefix: '10.1.2.3', identity: 5, source: 'local' },
      ],
      deletes: [],
    });
    expect(c.lookup('10.1.2.3')?.identity).toBe(5);
    expect(c.lookup('10.1.2.4')).toMatchObject({ prefix: '10.1.2.0/24', identity: 100 });
    expect(c.lookup('192.0.2.1')?.identity).toBe(2);
    await c.apply({ upserts: [], deletes: ['10.1.2.3/32'] });
    expect(c.lookup('10.1.2.3')?.identity).toBe(100);
  });

  it('writes each batch once, tells subscribers, and reconciles a map it attaches to', async () => {
    const c = new LocalIpCache(silent);
    const seen: IpCacheDelta[] = [];
    c.subscribe((d) => seen.push(d));
    await c.apply({ upserts: [{ prefix: '10.0.0.5/32', identity: 5, source: 'local' }], deletes: [] });
    const map = new FakeMap();
    map.entries.set('10.0.0.9/32', 5); // left by an endpoint deleted while the agent was down
    c.attach(map);
    expect([...map.entries]).toEqual([['10.0.0.9/32', 5], ['10.0.0.5/32', 5]]);
    expect(c.pruneMap()).toBe(1);
    expect([...map.entries]).toEqual([['10.0.0.5/32', 5]]);
    await c.apply({ upserts: [{ prefix: '10.0.0.6/32', identity: 5, source: 'local' }], deletes: ['10.0.0.5/32'] });
    expect([...map.entries]).toEqual([['10.0.0.6/32', 5]]);
    expect(map.batches).toBe(3);
    expect(seen).toHaveLength(2);
  });

  it('keeps each source’s entry per prefix and shows the most authoritative: local > kvstore > custom > k8s > generated', async () => {
    const c = new LocalIpCache(silent);
    const map = new FakeMap();
    c.attach(map);
    const seen: IpCacheDelta[] = [];
    c.subscribe((d) => seen.push(d));
    const pod = { prefix: '10.0.0.7/32', identity: 4242, source: 'local' } as const;
    await c.apply({ upserts: [pod], deletes: [] });
    // A policy naming the pod's address as a CIDR does not take its identity away…
    await c.apply({ upserts: [{ prefix: '10.0.0.7/32', identity: 16_777_300, source: 'generated' }], deletes: [] });
    expect(c.lookup('10.0.0.7')).toEqual(pod);
    expect(map.entries.get('10.0.0.7/32')).toBe(4242);
    expect(seen.at(-1)).toEqual({ upserts: [], deletes: [] });
    // …nor does removing that policy CIDR (its delete names its source)…
    await c.apply({ upserts: [], deletes: ['10.0.0.7/32'], deleteSource: 'generated' });
    expect(map.entries.get('10.0.0.7/32')).toBe(4242);
    // …and once the pod goes, what the policy holds shows.
    await c.apply({ upserts: [{ prefix: '10.0.0.7/32', identity: 16_777_300, source: 'generated' }], deletes: [] });
    await c.apply({ upserts: [], deletes: ['10.0.0.7/32'], deleteSource: 'local' });
    expect(c.lookup('10.0.0.7')).toMatchObject({ identity: 16_777_300, source: 'generated' });
    expect(map.entries.get('10.0.0.7/32')).toBe(16_777_300);
    expect(seen.at(-1)).toEqual({ upserts: [{ prefix: '10.0.0.7/32', identity: 16_777_300, source: 'generated' }], deletes: [] });
    // A remote node's entry sits between them.
    await c.apply({ upserts: [{ prefix: '10.0.0.7/32', identity: 77, source: 'kvstore', node: 'n2', tunnelEndpoint: '172.30.0.2' }], deletes: [] });
    expect(map.entries.get('10.0.0.7/32')).toBe(77);
    await c.apply({ upserts: [{ prefix: '10.0.0.7/32', identity: 4243, source: 'local' }], deletes: [] });
    expect(map.entries.get('10.0.0.7/32')).toBe(4243);
    await c.apply({ upserts: [], deletes: ['10.0.0.7/32'], deleteSource: 'local' });
    expect(map.entries.get('10.0.0.7/32')).toBe(77);
    // A delete without a source removes the prefix whatever holds it.
    await c.apply({ upserts: [], deletes: ['10.0.0.7/32'] });
    expect(c.lookup('10.0.0.7')).toBeUndefined();
    expect(map.entries.has('10.0.0.7/32')).toBe(false);
    expect(seen.at(-1)).toEqual({ upserts: [], deletes: ['10.0.0.7/32'] });
  });

  it('leaves the cache as it was when the map write fails', async () => {
    const c = new LocalIpCache(silent);
    await c.apply({ upserts: [{ prefix: '10.0.0.8/32', identity: 5, source: 'local' }], deletes: [] });
    let full = false;
    c.attach({
      write: () => {
        if (full) throw new Error('map full');
      },
      prefixes: () => [],
    });
    full = true;
    await expect(c.apply({ upserts: [{ prefix: '10.0.0.9/32', identity: 6, source: 'local' }], deletes: ['10.0.0.8/32'], deleteSource: 'local' })).rejects.toThrow('map full');
    expect(c.list()).toEqual([{ prefix: '10.0.0.8/32', identity: 5, source: 'local' }]);
  });

  it('names the entry of a bad prefix and changes nothing', async () => {
    const c = new LocalIpCache(silent);
    await expect(c.apply({ upserts: [{ prefix: '10.0.0.0/33', identity: 1, source: 'local' }], deletes: [] })).rejects.toThrow(/upserts\[0\]\.prefix: .*prefix length/);
    expect(c.list()).toEqual([]);
  });
});

describe('parsePrefix', () => {
  it('parses IPv4 and IPv6, clearing host bits', () => {
    expect(parsePrefix('10.1.2.3/8').cidr).toBe('10.0.0.0/8');
    expect(parsePrefix('fd00:0:0:0::1/64').cidr).toBe('fd00::/64');
    expect(parsePrefix('2001:db8::1').cidr).toBe('2001:db8::1/128');
    expect(() => parsePrefix('10.0.0.256')).toThrow(/not an IP/);
    expect(() => parsePrefix('1::2::3')).toThrow(/not an IP/);
  });

  it('gives the IPv4 fast path the same answers as the general one', () => {
    expect(parsePrefix('0.0.0.0/0')).toEqual({ family: 'ipv4', length: 0, value: 0n, cidr: '0.0.0.0/0' });
    expect(parsePrefix('255.255.255.255')).toEqual({ family: 'ipv4', length: 32, value: 0xffffffffn, cidr: '255.255.255.255/32' });
    expect(parsePrefix('192.168.77.129/25')).toEqual({ family: 'ipv4', length: 25, value: 0xc0a84d80n, cidr: '192.168.77.128/25' });
    expect(parsePrefix('10.200.1.7/31').cidr).toBe('10.200.1.6/31');
    expect(() => parsePrefix('010.0.0.1')).toThrow(/not an IP/);
    expect(() => parsePrefix('1.2.3.4/33')).toThrow(/prefix length must be 0-32/);
    expect(() => parsePrefix('1.2.3')).toThrow(/not an IP/);
  });
});
