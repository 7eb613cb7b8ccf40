import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { IdentityRange, type Logger } from '@cilia/core';
import { CrdIdentityAllocator, labelsKey } from '@cilia/identity';
import { KubeCiliumIdentityStore, KubeClient, loadKubeConfig } from '@cilia/k8s';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/agent.js';
import { KubeApiServer, kubectl } from '../support/k8s-api-server/index.js';

// identity.mode: crd — cluster identities as CiliumIdentity objects, no etcd: two allocators
// (as two agents run them, each with its own API connection and informer) allocating the same
// 100 label sets concurrently get the same ids, with one object per label set; an id taken by
// another label set (applied with kubectl) is walked past by both in the same way; a third
// allocator started later learns them all from the listing and creates nothing.

const logger = pino({ level: process.env['DEBUG_K8S'] ? 'debug' : 'silent' }) as unknown as Logger;
const SPAN = IdentityRange.clusterMax - IdentityRange.clusterMin + 1;
let server: KubeApiServer;
let kubeconfig: string;
const allocators: CrdIdentityAllocator[] = [];

async function agent(): Promise<CrdIdentityAllocator> {
  const store = new KubeCiliumIdentityStore({ client: new KubeClient(loadKubeConfig({ kubeconfig })), logger, retryInitialMs: 100, retryMaxMs: 400 });
  const allocator = new CrdIdentityAllocator({ store, logger });
  allocators.push(allocator);
  await allocator.start();
  return allocator;
}

const labelSet = (i: number) => ({ 'k8s:app': `app-${i}`, 'k8s:io.kubernetes.pod.namespace': `ns-${i % 7}` });
/** Where a label set's walk starts (the allocator's documented rule: its labels key hashed). */
const startOf = (labels: Record<string, string>) => IdentityRange.clusterMin + (createHash('sha256').update(labelsKey(labels)).digest().readUInt32BE(0) % SPAN);

beforeAll(async () => {
  server = new KubeApiServer({ token: 'identity-test' });
  await server.start();
  kubeconfig = server.writeKubeconfig();
  expect((await kubectl(kubeconfig, ['apply', '-f', join(REPO, 'deploy/kubernetes/crds/ciliumidentities.yaml')])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const a of allocators) await a.stop();
  await server?.dispose();
});

describe('identity.mode: crd', () => {
  it('two agents allocating 100 label sets concurrently get identical ids, one CiliumIdentity each; an id taken by other labels is walked past alike', async () => {
    // Label set 0's starting id is taken by another label set, applied with kubectl.
    const first = { ...labelSet(0) };
    const relevant = (a: CrdIdentityAllocator, l: Record<string, string>) => a.identityLabels(l);
    const [a, b] = [await agent(), await agent()];
    const taken = startOf(relevant(a, first));
    const squatter = { apiVersion: 'cilium.io/v2', kind: 'CiliumIdentity', metadata: { name: String(taken) }, 'security-labels': { 'k8s:app': 'squatter' } };
    const applied = await kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(squatter));
    expect(applied.code, applied.stderr).toBe(0);

    const sets = Array.from({ length: 100 }, (_, i) => labelSet(i));
    const [fromA, fromB] = await Promise.all([Promise.all(sets.map((l) => a.allocate(l))), Promise.all([...sets].reverse().map((l) => b.allocate(l))).then((r) => r.reverse())]);
    const idsA = fromA.map((r) => r.identity.id);
    const idsB = fromB.map((r) => r.identity.id);
    expect(idsB).toEqual(idsA);
    expect(new Set(idsA).size).toBe(100);
    for (const id of idsA) expect(id >= IdentityRange.clusterMin && id <= IdentityRange.clusterMax).toBe(true);
    // Exactly one of the two created each (the other found it), and the squatter was walked past.
    expect(fromA.filter((r) => r.isNew).length + fromB.filter((r) => r.isNew).length).toBe(100);
    expect(idsA[0]).toBe(taken + 1 > IdentityRange.clusterMax ? IdentityRange.clusterMin : taken + 1);

    // In the API: the squatter and one object per label set, carrying its labels.
    const objects = server.objects('cilium.io/v2', 'CiliumIdentity');
    expect(objects.length).toBe(101);
    const byName = new Map(objects.map((o) => [o.metadata.name, o]));
    for (const [i, id] of idsA.entries()) expect(byName.get(String(id))?.['security-labels']).toEqual(relevant(a, sets[i]!));
    expect(byName.get(String(taken))?.['security-labels']).toEqual({ 'k8s:app': 'squatter' });
    // kubectl sees them too (as an operator would list them).
    const listed = await kubectl(kubeconfig, ['get', 'ciliumidentities', '-o', 'name']);
    expect(listed.stdout.trim().split('\n')).toHaveLength(101);

    // Each agent knows the other's identities through its informer.
    await expect.poll(() => idsA.every((id) => a.lookup(id) !== undefined && b.lookup(id) !== undefined), { timeout: 5000 }).toBe(true);
    expect(b.lookup(taken)?.labels).toEqual({ 'k8s:app': 'squatter' });

    // A third agent started later learns them from the listing and allocates without creating anything.
    const posts = () => server.requests.filter((r) => r.method === 'POST' && r.path === '/apis/cilium.io/v2/ciliumidentities').length;
    const before = posts();
    const c = await agent();
    const fromC = await Promise.all(sets.map((l) => c.allocate(l)));
    expect(fromC.map((r) => r.identity.id)).toEqual(idsA);
    expect(fromC.some((r) => r.isNew)).toBe(false);
    expect(posts()).toBe(before);
    // Releasing references keeps the objects (collection is the operator's, as in Cilium).
    expect(await c.release(idsA[0]!)).toBe(true);
    expect(server.objects('cilium.io/v2', 'CiliumIdentity').length).toBe(101);
  }, 60_000);

  it('answers init while the API server is away, and the real identity once it is back', async () => {
    const a = allocators[0]!;
    await server.stop();
    try {
      const r = await a.allocate({ 'k8s:app': 'during-outage' });
      expect(r.identity.id).toBe(5);
    } finally {
      await server.start();
    }
    const r = await a.allocate({ 'k8s:app': 'during-outage' });
    expect(r.identity.id).toBeGreaterThanOrEqual(IdentityRange.clusterMin);
    expect(server.objects('cilium.io/v2', 'CiliumIdentity').map((o) => o.metadata.name)).toContain(String(r.identity.id));
  }, 30_000);
});
