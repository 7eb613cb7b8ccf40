import type { IpCache, IpCacheDelta, IpCacheEntry } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { DeferredIpCache } from './deferred-ipcache.js';

const entry = (prefix: string, identity: number): IpCacheEntry => ({ prefix, identity, source: 'generated' });

/** An ipcache that records the batches it is given. */
function recording(): IpCache & { batches: IpCacheDelta[] } {
  const batches: IpCacheDelta[] = [];
  return {
    batches,
    apply: async (delta) => void batches.push(delta),
    lookup: () => undefined,
    list: () => [],
    subscribe: () => () => undefined,
  };
}

describe('DeferredIpCache', () => {
  it('holds batches until connected, hands over what it holds, then passes batches through', async () => {
    const deferred = new DeferredIpCache();
    const seen: IpCacheDelta[] = [];
    deferred.subscribe((d) => seen.push(d));
    await deferred.apply({ upserts: [entry('192.0.2.0/24', 16777217), entry('198.51.100.0/24', 16777218)], deletes: [] });
    await deferred.apply({ upserts: [], deletes: ['198.51.100.0/24'] });
    expect(deferred.list()).toEqual([entry('192.0.2.0/24', 16777217)]);
    expect(deferred.lookup('192.0.2.0/24')).toEqual(entry('192.0.2.0/24', 16777217));

    const target = recording();
    await deferred.connect(target);
    expect(target.batches).toEqual([{ upserts: [entry('192.0.2.0/24', 16777217)], deletes: [] }]);
    const later = { upserts: [entry('203.0.113.0/24', 16777219)], deletes: ['192.0.2.0/24'] };
    await deferred.apply(later);
    expect(target.batches.at(-1)).toEqual(later);
    expect(seen).toHaveLength(3);

    deferred.disconnect();
    await deferred.apply({ upserts: [entry('10.9.0.0/16', 16777220)], deletes: [] });
    expect(target.batches).toHaveLength(2);
    expect(deferred.list().map((e) => e.prefix)).toEqual(['203.0.113.0/24', '10.9.0.0/16']);
  });

  it('connecting with nothing held writes nothing', async () => {
    const target = recording();
    await new DeferredIpCache().connect(target);
    expect(target.batches).toEqual([]);
  });
});
