// The allocator on the real embedded KvStore (files on disk), not the logic-test double.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@cilia/core';
import { EmbeddedKvStore } from '@cilia/kvstore';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KvIdentityAllocator } from './allocator.js';
import { labelsKey } from './labels.js';

const logger = pino({ level: 'silent' }) as unknown as Logger;
const PREFIX = 'cilium/state/identities/v1/';

describe('KvIdentityAllocator on the embedded KvStore', () => {
  const dirs: string[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  async function open(dir: string) {
    const kv = await EmbeddedKvStore.open(dir);
    cleanups.push(() => kv.close());
    return kv;
  }
  function allocator(kv: EmbeddedKvStore, node: string) {
    const a = new KvIdentityAllocator({ kv, node, logger });
    cleanups.push(() => a.stop());
    return a;
  }

  it('gives overlapping label sets from three allocators consistent ids, concurrently', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-identity-kv-'));
    dirs.push(dir);
    const kv = await open(dir);
    const agents = ['node-1', 'node-2', 'node-3'].map((n) => allocator(kv, n));
    for (const a of agents) await a.start();
    const sets = Array.from({ length: 30 }, (_, i) => ({ 'k8s:io.kubernetes.pod.namespace': `ns${i % 3}`, 'k8s:app': `app${Math.floor(i / 3)}` }));
    const results = await Promise.all(sets.flatMap((labels, i) => agents.map((a, j) => a.allocate(labels).then((r) => ({ i, j, id: r.identity.id })))));
    const idOf = new Map<number, number>();
    for (const r of results) {
      expect(r.id).toBeGreaterThanOrEqual(256);
      if (idOf.has(r.i)) expect(r.id).toBe(idOf.get(r.i));
      else idOf.set(r.i, r.id);
    }
    expect(new Set(idOf.values()).size).toBe(30);
    const { entries } = await kv.list(`${PREFIX}id/`);
    expect(entries.length).toBe(30);
    const refs = await kv.list(`${PREFIX}value/${labelsKey(agents[0]!.identityLabels(sets[0]!))}/`);
    expect(refs.entries.map((e) => e.key.split('/').at(-1)).sort()).toEqual(['node-1', 'node-2', 'node-3']);
  });

  it('finds the same ids after the store and the allocator are reopened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-identity-kv-'));
    dirs.push(dir);
    let kv = await open(dir);
    let a = allocator(kv, 'node-1');
    await a.start();
    const web = await a.allocate({ 'k8s:io.kubernetes.pod.namespace': 'p', 'k8s:app': 'web' });
    const db = await a.allocate({ 'k8s:io.kubernetes.pod.namespace': 'p', 'k8s:app': 'db' });
    a.stop();
    await kv.close();
    kv = await open(dir);
    a = allocator(kv, 'node-1');
    await a.start();
    expect(a.lookup(web.identity.id)?.labels).toEqual(web.identity.labels); // loaded from the store
    expect((await a.allocate({ 'k8s:io.kubernetes.pod.namespace': 'p', 'k8s:app': 'db' })).identity.id).toBe(db.identity.id);
    expect((await a.allocate({ 'k8s:io.kubernetes.pod.namespace': 'p', 'k8s:app': 'web', 'k8s:pod-template-hash': 'z' })).identity.id).toBe(web.identity.id);
  });
});
