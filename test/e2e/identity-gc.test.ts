// Identity garbage collection against the real stores (the embedded KvStore on disk, and etcd),
// on the allocator's own timer: an identity no node references goes after the grace period, one
// still referenced by any node never does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KvStore, Logger } from '@cilia/core';
import { KvIdentityAllocator } from '@cilia/identity';
import { EmbeddedKvStore } from '@cilia/kvstore';
import { etcdKvStoreConfig, EtcdKvStore } from '@cilia/plugin-kvstore-etcd';
import { EtcdServer } from '@cilia/plugin-kvstore-etcd/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logger = pino({ level: 'silent' }) as unknown as Logger;
const GRACE_MS = 1500;
const ns = (app: string) => ({ 'k8s:io.kubernetes.pod.namespace': 'gc', 'k8s:app': app });

interface Store {
  readonly kv: KvStore;
  close(): Promise<void>;
}

const stores: [string, () => Promise<Store>][] = [
  [
    'embedded KvStore',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cilia-identity-gc-'));
      const kv = await EmbeddedKvStore.open(dir);
      return { kv, close: async () => (await kv.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  ],
  [
    'etcd',
    async () => {
      const etcd = await EtcdServer.start();
      const kv = await EtcdKvStore.connect(etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], keyPrefix: `/gc-${process.pid}` }), logger);
      return { kv, close: async () => (await kv.close(), await etcd.stop()) };
    },
  ],
];

describe.each(stores)('identity GC on the %s', (_, open) => {
  let store: Store;
  const allocators: KvIdentityAllocator[] = [];
  beforeAll(async () => {
    store = await open();
  }, 30_000);
  afterAll(async () => {
    for (const a of allocators) a.stop();
    await store?.close();
  });

  it('releases an unreferenced identity after the grace period, never one another node still holds', async () => {
    const start = async (node: string) => {
      const a = new KvIdentityAllocator({ kv: store.kv, node, logger, gcGraceMs: GRACE_MS, gcIntervalMs: 200 });
      await a.start();
      allocators.push(a);
      return a;
    };
    const [a, b] = [await start('node-1'), await start('node-2')];
    const gone = (await a.allocate(ns('gone'))).identity.id;
    const shared = (await a.allocate(ns('shared'))).identity.id;
    expect((await b.allocate(ns('shared'))).identity.id).toBe(shared);

    await a.release(gone);
    await a.release(shared); // node-2 still holds it
    const released = Date.now();
    const idKey = (id: number) => `cilium/state/identities/v1/id/${id}`;

    // Within the grace period both stay, on the store and in every allocator's view.
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    expect(await store.kv.get(idKey(gone))).toBeDefined();
    expect(b.lookup(gone)).toBeDefined();

    // Then the unreferenced one goes, seen by the other node through its watch.
    const deadline = Date.now() + 10 * GRACE_MS;
    while ((await store.kv.get(idKey(gone))) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await store.kv.get(idKey(gone))).toBeUndefined();
    expect(Date.now() - released).toBeGreaterThanOrEqual(GRACE_MS);
    await expect.poll(() => b.lookup(gone), { timeout: 5000 }).toBeUndefined();

    // Several more GC rounds: the one node-2 references stays, with the same id for both.
    await new Promise((r) => setTimeout(r, GRACE_MS + 500));
    expect(await store.kv.get(idKey(shared))).toBeDefined();
    expect(a.lookup(shared)?.labels).toMatchObject({ 'k8s:app': 'shared' });
    expect((await a.allocate(ns('shared'))).identity.id).toBe(shared);
  }, 30_000);
});
