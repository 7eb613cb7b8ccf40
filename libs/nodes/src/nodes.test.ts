// Three agents' node registries and ipcache syncs sharing one real embedded KvStore (files on disk).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cidr, IpCacheEntry, Logger, NodeEvent } from '@cilia/core';
import { LocalIpCache } from '@cilia/datapath';
import { EmbeddedKvStore } from '@cilia/kvstore';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeIpEntry } from './codec.js';
import { KvIpCacheSync } from './ipcache-sync.js';
import { KvNodeRegistry } from './registry.js';
import { NodeSession } from './session.js';

const logger = pino({ level: 'silent' }) as unknown as Logger;
const NODES = 'cilium/state/nodes/v1/default/';
const IPS = 'cilium/state/ip/v1/default/';

interface Agent {
  name: string;
  registry: KvNodeRegistry;
  ipcache: LocalIpCache;
  sync: KvIpCacheSync;
  batches: { upserts: readonly IpCacheEntry[]; deletes: readonly Cidr[] }[];
  events: NodeEvent[];
}

describe('node registry and ipcache sync on one embedded KvStore', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function store(): Promise<EmbeddedKvStore> {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-nodes-kv-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const kv = await EmbeddedKvStore.open(dir, { leaseCheckIntervalMs: 50 });
    cleanups.push(() => kv.close());
    return kv;
  }

  async function agent(kv: EmbeddedKvStore, n: number, localEntries: IpCacheEntry[] = []): Promise<Agent> {
    const name = `node-${n}`;
    const ipcache = new LocalIpCache(logger);
    const batches: Agent['batches'] = [];
    // The LPM map stands in as a recorder: these tests are about what reaches it, batch by batch.
    ipcache.attach({ write: (upserts, deletes) => void batches.push({ upserts: [...upserts], deletes: [...deletes] }), prefixes: () => [] });
    await ipcache.apply({ upserts: localEntries, deletes: [] });
    const registry = new KvNodeRegistry({ kv, logger, leaseTtlSeconds: 5 });
    const events: NodeEvent[] = [];
    registry.subscribe((e) => events.push(e));
    await registry.start({ name, ipv4: `192.0.2.${n}`, tunnelEndpoint: `192.0.2.${n}`, podCidrs: [`10.200.${n}.0/24`] });
    const sync = new KvIpCacheSync({ kv, ipcache, node: name, tunnelEndpoint: `192.0.2.${n}`, lease: () => registry.lease(), logger });
    registry.onLease(() => void sync.republish());
    await sync.start();
    let stopped = false;
    const a: Agent = { name, registry, ipcache, sync, batches, events };
    cleanups.push(async () => {
      if (stopped) return;
      stopped = true;
      sync.stop();
      await registry.stop();
    });
    return a;
  }

  const ep = (ip: string, identity: number): IpCacheEntry => ({ prefix: `${ip}/32`, identity, source: 'local' });
  const remoteIn = (a: Agent) =>
    a.ipcache
      .list()
      .filter((e) => e.source === 'kvstore')
      .map((e) => `${e.prefix} ${e.identity} ${e.tunnelEndpoint} ${e.node}`)
      .sort();

  it('sees joins, updates nothing spuriously, and sees a leave when a lease is revoked', async () => {
    const kv = await store();
    const a = await agent(kv, 1);
    const b = await agent(kv, 2);
    const c = await agent(kv, 3);
    await expect.poll(() => a.registry.list().map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(c.registry.list().map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(a.events.filter((e) => e.type === 'join').map((e) => e.node.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(a.registry.local()?.name).toBe('node-1');
    const b2 = a.registry.list().find((n) => n.name === 'node-2')!;
    expect(b2).toMatchObject({ ipv4: '192.0.2.2', tunnelEndpoint: '192.0.2.2', podCidrs: ['10.200.2.0/24'] });
    expect(Date.parse(b2.registeredAt)).toBeGreaterThan(Date.now() - 60_000);

    await b.registry.stop();
    await expect.poll(() => a.registry.list().map((n) => n.name)).toEqual(['node-1', 'node-3']);
    expect(c.registry.list().map((n) => n.name)).toEqual(['node-1', 'node-3']);
    expect(a.events.at(-1)).toMatchObject({ type: 'leave', node: { name: 'node-2' } });
    expect(a.events.filter((e) => e.type === 'update')).toEqual([]);
  });

  it('registers again when its own key is deleted under it', async () => {
    const kv = await store();
    const a = await agent(kv, 1, [ep('10.200.1.5', 1000)]);
    const b = await agent(kv, 2);
    const firstLease = a.registry.lease()!.id;
    await a.registry.lease()!.revoke();
    await expect.poll(() => a.registry.lease()?.id ?? firstLease).not.toBe(firstLease);
    await expect.poll(async () => (await kv.get(`${NODES}node-1`))?.lease).toBe(a.registry.lease()!.id);
    // Its ipcache entry, gone with the old lease, is written again under the new one.
    await expect.poll(async () => (await kv.get(`${IPS}10.200.1.5`))?.lease).toBe(a.registry.lease()!.id);
    await expect.poll(() => remoteIn(b)).toEqual(['10.200.1.5/32 1000 192.0.2.1 node-1']);
    expect(b.registry.list().map((n) => n.name)).toEqual(['node-1', 'node-2']);
  });

  it('replicates local entries to the other nodes and withdraws them when the node leaves', async () => {
    const kv = await store();
    const a = await agent(kv, 1, [ep('10.200.1.5', 1000)]);
    const b = await agent(kv, 2);
    const c = await agent(kv, 3, [ep('10.200.3.7', 2000)]);
    // Stored in Cilium's shape, under the owner's lease.
    const stored = await kv.get(`${IPS}10.200.1.5`);
    expect(stored?.lease).toBe(a.registry.lease()!.id);
    expect(JSON.parse(new TextDecoder().decode(stored!.value))).toMatchObject({ IP: '10.200.1.5', Mask: null, HostIP: '192.0.2.1', ID: 1000, NodeName: 'node-1' });

    await expect.poll(() => remoteIn(b)).toEqual(['10.200.1.5/32 1000 192.0.2.1 node-1', '10.200.3.7/32 2000 192.0.2.3 node-3']);
    await expect.poll(() => remoteIn(a)).toEqual(['10.200.3.7/32 2000 192.0.2.3 node-3']);
    expect(b.ipcache.lookup('10.200.3.7')).toMatchObject({ identity: 2000, tunnelEndpoint: '192.0.2.3', node: 'node-3', source: 'kvstore' });

    // Endpoints coming and going on A follow; many at once reach B's map in few batches.
    const before = b.batches.length;
    const many = Array.from({ length: 200 }, (_, i) => ep(`10.200.1.${10 + i}`, 3000 + i));
    await a.ipcache.apply({ upserts: many, deletes: [] });
    await expect.poll(() => remoteIn(b).length, { timeout: 10_000 }).toBe(202);
    const added = b.batches.slice(before);
    expect(added.flatMap((x) => x.upserts)).toHaveLength(200);
    expect(added.length).toBeLessThan(20);
    await a.ipcache.apply({ upserts: [], deletes: many.map((e) => e.prefix) });
    await expect.poll(() => remoteIn(b).length, { timeout: 10_000 }).toBe(2);

    // A leaves: its lease goes, its entries go from B and C (and from B's map).
    await a.sync.stop();
    await a.registry.stop();
    await expect.poll(() => remoteIn(b)).toEqual(['10.200.3.7/32 2000 192.0.2.3 node-3']);
    expect(remoteIn(c)).toEqual([]);
    expect(b.batches.flatMap((x) => x.deletes)).toContain('10.200.1.5/32');
    expect(await kv.get(`${IPS}10.200.1.5`)).toBeUndefined();
  });

  it('lets a local entry win over a remote one for the same prefix, and gives the prefix back when it goes', async () => {
    const kv = await store();
    const a = await agent(kv, 1);
    const b = await agent(kv, 2, [ep('10.200.9.9', 2222)]);
    await expect.poll(() => remoteIn(a)).toEqual(['10.200.9.9/32 2222 192.0.2.2 node-2']);
    // A claims the same IP later: one key per IP, so A's write replaces B's in the store,
    // but B's own endpoint keeps the prefix in B's ipcache.
    await a.ipcache.apply({ upserts: [ep('10.200.9.9', 1111)], deletes: [] });
    await a.sync.settled();
    await expect.poll(async () => decodeIpEntry((await kv.get(`${IPS}10.200.9.9`))!.value)).toMatchObject({ node: 'node-1' });
    await new Promise((r) => setTimeout(r, 100));
    await b.sync.settled();
    expect(b.ipcache.lookup('10.200.9.9')).toMatchObject({ identity: 2222, source: 'local' });
    expect(a.ipcache.lookup('10.200.9.9')).toMatchObject({ identity: 1111, source: 'local' });
    // B's endpoint goes: B does not delete A's key, and A's entry takes the prefix.
    await b.ipcache.apply({ upserts: [], deletes: ['10.200.9.9/32'] });
    await expect.poll(() => b.ipcache.lookup('10.200.9.9')).toMatchObject({ identity: 1111, source: 'kvstore', node: 'node-1', tunnelEndpoint: '192.0.2.1' });
    await b.sync.settled();
    expect(decodeIpEntry((await kv.get(`${IPS}10.200.9.9`))!.value)).toMatchObject({ node: 'node-1', identity: 1111 });
  });

  it("carries a pod's namespace and name to the other nodes (Cilium's K8sNamespace, K8sPodName)", async () => {
    const kv = await store();
    const a = await agent(kv, 1);
    await agent(kv, 2, [{ ...ep('10.200.2.7', 2707), namespace: 'shop', podName: 'web-1' }]);
    await expect.poll(() => a.ipcache.lookup('10.200.2.7')).toMatchObject({ identity: 2707, source: 'kvstore', node: 'node-2', namespace: 'shop', podName: 'web-1' });
    const stored = JSON.parse(new TextDecoder().decode((await kv.get(`${IPS}10.200.2.7`))!.value)) as Record<string, unknown>;
    expect(stored).toMatchObject({ K8sNamespace: 'shop', K8sPodName: 'web-1', NodeName: 'node-2' });
  });

  it('drops entries a previous run of the same node left that are no longer local', async () => {
    const kv = await store();
    const lease = await kv.grantLease(30);
    const put = (ip: string, id: number) => kv.put(`${IPS}${ip}`, new TextEncoder().encode(JSON.stringify({ IP: ip, Mask: null, HostIP: '192.0.2.1', ID: id, Key: 0, Metadata: '', NodeName: 'node-1' })), { lease: lease.id });
    await put('10.200.1.50', 50);
    await put('10.200.1.51', 51);
    await agent(kv, 1, [ep('10.200.1.51', 51)]);
    expect(await kv.get(`${IPS}10.200.1.50`)).toBeUndefined();
    expect(decodeIpEntry((await kv.get(`${IPS}10.200.1.51`))!.value)).toMatchObject({ prefix: '10.200.1.51/32', identity: 51, node: 'node-1' });
    await lease.revoke();
  });

  it('starts without a reachable store and registers once it answers', async () => {
    const kv = await store();
    let down = true;
    // The real store behind a switch: while "down", every call fails as an unreachable etcd would.
    const flaky = new Proxy(kv, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (down) return prop === 'watch' ? (() => { throw new Error('store unreachable'); })() : Promise.reject(new Error('store unreachable'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const ipcache = new LocalIpCache(logger);
    await ipcache.apply({ upserts: [ep('10.200.4.4', 4444)], deletes: [] });
    const registry = new KvNodeRegistry({ kv: flaky, logger, leaseTtlSeconds: 5 });
    const node = { name: 'node-4', ipv4: '192.0.2.4', tunnelEndpoint: '192.0.2.4', podCidrs: ['10.200.4.0/24'] };
    const sync = new KvIpCacheSync({ kv: flaky, ipcache, node: 'node-4', tunnelEndpoint: '192.0.2.4', lease: () => registry.lease(), logger });
    const session = new NodeSession({ registry, sync, node, logger, firstWaitMs: 100, retryMs: 50 });
    cleanups.push(() => session.stop());
    const t0 = Date.now();
    await session.start();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(session.problems()).toEqual(['node node-4 is not registered in the KvStore yet: store unreachable']);
    expect(registry.local()).toBeUndefined();
    down = false;
    await expect.poll(() => session.problems()).toEqual([]);
    expect(registry.list().map((n) => n.name)).toEqual(['node-4']);
    expect(decodeIpEntry((await kv.get(`${IPS}10.200.4.4`))!.value)).toMatchObject({ identity: 4444, node: 'node-4', tunnelEndpoint: '192.0.2.4' });
    await session.stop();
    expect(await kv.get(`${NODES}node-4`)).toBeUndefined();
    expect(await kv.get(`${IPS}10.200.4.4`)).toBeUndefined();
  });

  it('ignores malformed keys, saying why', () => {
    expect(decodeIpEntry(new TextEncoder().encode('{'))).toMatch(/not JSON/);
    expect(decodeIpEntry(new TextEncoder().encode('{"IP":"10.0.0.1","ID":-1}'))).toMatch(/^ID:/);
    expect(decodeIpEntry(new TextEncoder().encode('{"IP":"10.0.0.0","ID":7,"Mask":8}'))).toMatchObject({ prefix: '10.0.0.0/8', identity: 7 });
  });
});
