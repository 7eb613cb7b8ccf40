import { IdentityRange, ReservedIdentity, type Logger } from '@cilia/core';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KvIdentityAllocator, type KvIdentityAllocatorOptions } from './allocator.js';
import { labelsKey } from './labels.js';
import { MemoryKv } from './testing/memory-kv.js';

const PREFIX = 'cilium/state/identities/v1/';
const logger = pino({ level: 'silent' }) as unknown as Logger;
const started: KvIdentityAllocator[] = [];

async function allocator(kv: MemoryKv, node: string, extra: Partial<KvIdentityAllocatorOptions> = {}) {
  const a = new KvIdentityAllocator({ kv, node, logger, ...extra });
  await a.start();
  started.push(a);
  return a;
}
afterEach(() => {
  for (const a of started.splice(0)) a.stop();
});
const ns = (n: string, more: Record<string, string> = {}) => ({ 'k8s:io.kubernetes.pod.namespace': n, ...more });
const text = (v: Uint8Array | undefined) => new TextDecoder().decode(v);

describe('KvIdentityAllocator', () => {
  it('writes id/<id> → labels and value/<labels>/<node> → id under the lease, and reuses the id', async () => {
    const kv = new MemoryKv();
    const a = await allocator(kv, 'node-1');
    const labels = ns('prod', { 'k8s:app': 'web', 'k8s:pod-template-hash': 'abc' });
    const first = await a.allocate(labels);
    expect(first.isNew).toBe(true);
    expect(first.identity.scope).toBe('cluster');
    expect(first.identity.id).toBeGreaterThanOrEqual(IdentityRange.clusterMin);
    expect(first.identity.id).toBeLessThanOrEqual(IdentityRange.clusterMax);
    // The churny label is not part of identity: a sibling pod gets the same id.
    const second = await a.allocate(ns('prod', { 'k8s:app': 'web', 'k8s:pod-template-hash': 'xyz' }));
    expect(second).toEqual({ identity: first.identity, isNew: false });
    const key = labelsKey(first.identity.labels);
    expect(key).toBe('k8s:app=web;k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=prod;k8s:io.kubernetes.pod.namespace=prod;');
    expect(text(kv.entries.get(`${PREFIX}id/${first.identity.id}`)?.value)).toBe(key);
    const ref = kv.entries.get(`${PREFIX}value/${key}/node-1`);
    expect(text(ref?.value)).toBe(String(first.identity.id));
    expect(ref?.lease).toBeDefined();
    expect(a.lookup(first.identity.id)).toEqual(first.identity);
    expect(a.lookupByLabels(labels)?.id).toBe(first.identity.id);
    // Reference counted: the node reference goes with the last release only.
    expect(await a.release(first.identity.id)).toBe(false);
    expect(kv.entries.has(`${PREFIX}value/${key}/node-1`)).toBe(true);
    expect(await a.release(first.identity.id)).toBe(true);
    expect(kv.entries.has(`${PREFIX}value/${key}/node-1`)).toBe(false);
    expect(kv.entries.has(`${PREFIX}id/${first.identity.id}`)).toBe(true);
  });

  it('answers reserved identities with their reserved: labels', async () => {
    const a = await allocator(new MemoryKv(), 'n');
    expect(a.lookup(ReservedIdentity.init)?.labels).toEqual({ 'reserved:init': '' });
    expect(a.lookup(ReservedIdentity.remoteNode)?.labels).toEqual({ 'reserved:remote-node': '' });
    expect(a.lookup(ReservedIdentity.kubeApiserver)?.labels).toEqual({ 'reserved:kube-apiserver': '' });
    expect(a.list().filter((i) => i.scope === 'reserved').map((i) => i.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const host = await a.allocate({ 'reserved:host': '' });
    expect(host.identity.id).toBe(1);
    expect(await a.release(1)).toBe(false);
  });

  it('gives node-local CIDR identities from (1<<24)+1, reference counted', async () => {
    const kv = new MemoryKv();
    const a = await allocator(kv, 'n');
    const c1 = await a.allocateCidr('10.0.0.0/8');
    const c2 = await a.allocateCidr('192.168.1.0/24');
    expect(c1.id).toBe(IdentityRange.localMin);
    expect(c2.id).toBe(IdentityRange.localMin + 1);
    expect(c1.scope).toBe('local');
    expect(c1.labels).toEqual({ 'cidr:10.0.0.0/8': '', 'reserved:world': '' });
    expect((await a.allocateCidr('10.0.0.0/8')).id).toBe(c1.id);
    expect([...kv.entries.keys()].some((k) => k.includes('cidr:'))).toBe(false);
    expect(await a.release(c1.id)).toBe(false);
    expect(await a.release(c1.id)).toBe(true);
    expect(a.lookup(c1.id)).toBeUndefined();
    await expect(a.allocateCidr('nope')).rejects.toThrow(/cidr/);
  });

  it('gives consistent ids under concurrent allocations from several agents sharing a store', async () => {
    const kv = new MemoryKv();
    const agents = await Promise.all(['node-1', 'node-2', 'node-3'].map((n) => allocator(kv, n)));
    const sets = Array.from({ length: 40 }, (_, i) => ns(`ns${i % 4}`, { 'k8s:app': `app${Math.floor(i / 2)}` }));
    const jobs = [];
    for (let round = 0; round < 3; round++) {
      for (const [i, labels] of sets.entries()) jobs.push(agents[(i + round) % 3]!.allocate(labels).then((r) => ({ key: labelsKey(labels), id: r.identity.id })));
    }
    const results = await Promise.all(jobs);
    const byLabels = new Map<string, Set<number>>();
    for (const r of results) byLabels.set(r.key, (byLabels.get(r.key) ?? new Set()).add(r.id));
    expect(byLabels.size).toBe(40);
    for (const ids of byLabels.values()) expect(ids.size).toBe(1);
    const ids = [...byLabels.values()].map((s) => [...s][0]!);
    expect(new Set(ids).size).toBe(40);
    expect(ids.every((id) => id >= 256 && id <= 65535)).toBe(true);
    // Exactly one master key per label set, and every agent's watch knows every id.
    expect([...kv.entries.keys()].filter((k) => k.startsWith(`${PREFIX}id/`)).length).toBe(40);
    for (const a of agents) for (const id of ids) expect(a.lookup(id)?.scope).toBe('cluster');
  });

  it('collects an id no node references after the grace period, and not before', async () => {
    const kv = new MemoryKv();
    const a = await allocator(kv, 'node-1', { gcGraceMs: 1000 });
    const b = await allocator(kv, 'node-2', { gcGraceMs: 1000 });
    const { identity } = await a.allocate(ns('x', { 'k8s:app': 'gc' }));
    await b.allocate(ns('x', { 'k8s:app': 'gc' }));
    await a.release(identity.id);
    expect(await a.collectGarbage(0)).toEqual([]);
    expect(await a.collectGarbage(5000)).toEqual([]); // node-2 still references it
    await b.release(identity.id);
    expect(await a.collectGarbage(10_000)).toEqual([]); // first seen unused
    expect(await a.collectGarbage(10_500)).toEqual([]); // within the grace
    expect(await a.collectGarbage(11_000)).toEqual([identity.id]);
    expect(kv.entries.has(`${PREFIX}id/${identity.id}`)).toBe(false);
    expect(a.lookup(identity.id)).toBeUndefined();
    expect(b.lookup(identity.id)).toBeUndefined(); // seen through the watch
  });

  it('answers init while the store is unreachable, then allocates without duplicates once it is back', async () => {
    const kv = new MemoryKv();
    const a = await allocator(kv, 'node-1', { kvTimeoutMs: 200, syncIntervalMs: 50 });
    const b = await allocator(kv, 'node-2', { kvTimeoutMs: 200 });
    const held = await a.allocate(ns('p', { 'k8s:app': 'db' }));
    kv.down = true;
    const during = await a.allocate(ns('p', { 'k8s:app': 'new' }));
    expect(during.identity.id).toBe(ReservedIdentity.init);
    // A label set this node holds is still answered from memory.
    expect((await a.allocate(ns('p', { 'k8s:app': 'db' }))).identity.id).toBe(held.identity.id);
    // Meanwhile the lease lapsed: the node's references vanished.
    for (const l of [...kv.leases]) kv.expire(l);
    kv.down = false;
    const [x, y] = await Promise.all([a.allocate(ns('p', { 'k8s:app': 'new' })), b.allocate(ns('p', { 'k8s:app': 'new' }))]);
    expect(x.identity.id).toBe(y.identity.id);
    expect(x.identity.id).toBeGreaterThanOrEqual(256);
    // The background check re-creates the reference to the held identity under a fresh lease.
    await expect.poll(() => kv.entries.get(`${PREFIX}value/${labelsKey(held.identity.labels)}/node-1`)?.lease, { timeout: 3000 }).toBeDefined();
    expect([...kv.entries.keys()].filter((k) => k.startsWith(`${PREFIX}id/`)).length).toBe(2);
  });

  it('finds the same ids after a restart (the old lease still there or lapsed)', async () => {
    const kv = new MemoryKv();
    const a = await allocator(kv, 'node-1');
    const one = await a.allocate(ns('r', { 'k8s:app': 'one' }));
    const two = await a.allocate(ns('r', { 'k8s:app': 'two' }));
    a.stop();
    const oldLease = [...kv.leases][0]!;
    const again = await allocator(kv, 'node-1');
    expect((await again.allocate(ns('r', { 'k8s:app': 'one' }))).identity.id).toBe(one.identity.id);
    kv.expire(oldLease); // two's reference lapses with the old lease; its id key stays (grace)
    const twoAgain = await again.allocate(ns('r', { 'k8s:app': 'two' }));
    expect(twoAgain.identity.id).toBe(two.identity.id);
    expect(kv.entries.get(`${PREFIX}value/${labelsKey(one.identity.labels)}/node-1`)?.lease).not.toBe(oldLease);
  });

  it('drops references no local user holds once the store answers (a release during an outage, a previous run)', async () => {
    const kv = new MemoryKv();
    const old = await allocator(kv, 'node-1');
    const stale = await old.allocate(ns('s', { 'k8s:app': 'gone' }));
    old.stop(); // a previous run: its reference to "gone" stays under its lease
    const a = await allocator(kv, 'node-1', { kvTimeoutMs: 200, syncIntervalMs: 50 });
    const r = await a.allocate(ns('s', { 'k8s:app': 'kept' }));
    kv.down = true;
    expect(await a.release(r.identity.id)).toBe(true); // the delete cannot reach the store
    kv.down = false;
    const refs = () => [...kv.entries.keys()].filter((k) => k.startsWith(`${PREFIX}value/`));
    await expect.poll(refs, { timeout: 3000 }).toEqual([]);
    // The ids themselves stay until the GC grace has passed.
    expect(kv.entries.has(`${PREFIX}id/${stale.identity.id}`)).toBe(true);
    expect(kv.entries.has(`${PREFIX}id/${r.identity.id}`)).toBe(true);
  });

  it('adds the namespace labels to identity', async () => {
    const a = await allocator(new MemoryKv(), 'n');
    a.setNamespaceLabels('prod', { team: 'blue' });
    const r = await a.allocate(ns('prod', { 'k8s:app': 'web' }));
    expect(r.identity.labels).toEqual({
      'k8s:app': 'web',
      'k8s:io.kubernetes.pod.namespace': 'prod',
      'k8s:io.cilium.k8s.namespace.labels.team': 'blue',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'prod',
    });
    const other = await a.allocate(ns('dev', { 'k8s:app': 'web' }));
    expect(other.identity.id).not.toBe(r.identity.id);
  });
});
