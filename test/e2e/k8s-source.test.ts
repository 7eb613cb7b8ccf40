import type { Logger, ResourceEvent, ResourceKind } from '@cilia/core';
import { KubeClient, KubernetesResourceSource, loadKubeConfig } from '@cilia/k8s';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO } from '../support/agent.js';
import { KubeApiServer, kubectl } from '../support/k8s-api-server/index.js';

// The Kubernetes ResourceSource (libs/k8s, over client-node's ListWatch) against the test API
// server: this node's Pods only, changes as kubectl makes them, bookmarks, the in-cluster
// service account, a CRD installed late, and the outage cases — nothing reported deleted while
// the server is away; on its return a resumed watch (or, after compaction, a 410 Gone and a
// re-list) reports what changed meanwhile.

const logger = pino({ level: 'silent' }) as unknown as Logger;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: { bookmarkIntervalMs?: number } = {}) {
  const server = new KubeApiServer({ token: 'k8s-source-test', ...options });
  await server.start();
  cleanups.push(() => server.dispose());
  const kubeconfig = server.writeKubeconfig();
  return { server, kubeconfig, apply: (...objects: object[]) => kubectl(kubeconfig, ['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n')) };
}

function follow(kubeconfig: string, kinds: ResourceKind[], node = 'node-a') {
  const source = new KubernetesResourceSource({ client: new KubeClient(loadKubeConfig({ kubeconfig })), nodeName: node, logger, retryInitialMs: 100, retryMaxMs: 400, watchTimeoutSeconds: 30 });
  cleanups.push(() => source.stop());
  const events: ResourceEvent[] = [];
  source.subscribe(kinds, (e) => events.push(e));
  const names = (type: ResourceEvent['type'], kind?: ResourceKind) =>
    events.filter((e) => e.type === type && (!kind || ('ref' in e && e.ref.kind === kind))).map((e) => ('ref' in e ? `${e.ref.namespace ? `${e.ref.namespace}/` : ''}${e.ref.name}` : e.type));
  return { source, events, names };
}

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pod = (name: string, node: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels }, spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] } });
const cnp = (name: string) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' }, spec: { endpointSelector: { matchLabels: { app: name } }, ingress: [{ fromEndpoints: [{}] }] } });

describe('the Kubernetes ResourceSource', () => {
  it("delivers what is there, then synced, then kubectl's changes: this node's Pods only, with apiVersion and kind", async () => {
    const { kubeconfig, apply } = await setup();
    await apply(pod('mine', 'node-a', { app: 'web' }), pod('theirs', 'node-b'));
    const { events, names } = follow(kubeconfig, ['Namespace', 'Pod']);
    await until('synced', () => events.some((e) => e.type === 'synced'));
    // Namespaces first (asked for first), this node's pod, then synced.
    expect(events.map((e) => (e.type === 'upsert' ? e.ref.kind : e.type))).toEqual(['Namespace', 'Namespace', 'Namespace', 'Namespace', 'Pod', 'synced']);
    expect(names('upsert', 'Pod')).toEqual(['default/mine']);
    expect(events.find((e) => e.type === 'upsert' && e.ref.kind === 'Pod')).toMatchObject({ object: { apiVersion: 'v1', kind: 'Pod', metadata: { labels: { app: 'web' } } } });

    await kubectl(kubeconfig, ['label', 'pod', 'mine', 'tier=front']);
    await apply(pod('second', 'node-a'), pod('elsewhere', 'node-c'));
    await kubectl(kubeconfig, ['delete', 'pod', 'mine']);
    await until('the delete', () => names('delete', 'Pod').length === 1);
    expect(names('upsert', 'Pod')).toEqual(['default/mine', 'default/mine', 'default/second']);
    expect(events.filter((e) => e.type === 'upsert' && e.ref.name === 'mine').at(-1)).toMatchObject({ object: { metadata: { labels: { app: 'web', tier: 'front' } } } });
    expect(names('delete', 'Pod')).toEqual(['default/mine']);
  });

  it('watches with bookmarks: the resourceVersion moves on while its kind is quiet', async () => {
    const { server, kubeconfig, apply } = await setup({ bookmarkIntervalMs: 100 });
    const { source, events } = follow(kubeconfig, ['NetworkPolicy']);
    await until('synced', () => events.some((e) => e.type === 'synced'));
    const before = Number(source.status()[0]!.resourceVersion);
    await apply(pod('unrelated', 'node-b'));
    await until('a bookmark past the Pod', () => Number(source.status()[0]!.resourceVersion) >= server.store.revision);
    expect(Number(source.status()[0]!.resourceVersion)).toBeGreaterThan(before);
    expect(events.filter((e) => e.type !== 'synced')).toEqual([]);
    const watch = server.requests.find((r) => r.method === 'WATCH' && r.path === '/apis/networking.k8s.io/v1/networkpolicies')!;
    expect(watch.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: '30', resourceVersion: String(before) });
  });

  it('in-cluster: the service account token and CA, KUBERNETES_SERVICE_HOST/PORT', async () => {
    const { server } = await setup();
    const root = mkdtempSync(join(tmpdir(), 'cilia-incluster-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(dir, { recursive: true });
    server.writeServiceAccount(dir);
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    process.env['KUBERNETES_SERVICE_HOST'] = '127.0.0.1';
    process.env['KUBERNETES_SERVICE_PORT'] = String(server.port);
    try {
      const client = new KubeClient(loadKubeConfig({ inClusterRoot: root }));
      expect(client.server).toBe(server.url);
      const namespaces = await client.list('/api/v1/namespaces');
      expect(namespaces.items.map((n) => n.metadata.name)).toContain('kube-system');
      // Without the service account's files there is nothing to authenticate with.
      expect(() => loadKubeConfig({ inClusterRoot: join(root, 'elsewhere') })).not.toThrow();
      await expect(new KubeClient(loadKubeConfig({ inClusterRoot: join(root, 'elsewhere') })).list('/api/v1/namespaces')).rejects.toThrow(/ENOENT|Unauthorized/);
    } finally {
      for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(() => loadKubeConfig({})).toThrow('no kubeconfig configured and not in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)');
    expect(() => loadKubeConfig({ kubeconfig: join(root, 'missing') })).toThrow(`kubeconfig ${join(root, 'missing')}: ENOENT`);
  });

  it('a kind whose CRD is missing counts as empty (synced) and is listed once the CRD is applied', async () => {
    const { server, kubeconfig, apply } = await setup();
    const { source, events, names } = follow(kubeconfig, ['CiliumNetworkPolicy', 'NetworkPolicy']);
    await until('synced', () => events.some((e) => e.type === 'synced'));
    expect(source.problems()).toEqual(['CiliumNetworkPolicy: not served by the API server (CRD not installed?)']);
    expect((await kubectl(kubeconfig, ['apply', '-f', join(REPO, 'deploy/kubernetes/crds/ciliumnetworkpolicies.yaml')])).code).toBe(0);
    await apply(cnp('late'));
    await until('the CNP', () => names('upsert', 'CiliumNetworkPolicy').length === 1, 5000);
    expect(source.problems()).toEqual([]);
    expect(server.objects('cilium.io/v2', 'CiliumNetworkPolicy').map((o) => o.metadata.name)).toEqual(['late']);
  });

  it('server away: nothing reported deleted, retries back off; back: the resumed watch reports what changed', async () => {
    const { server, kubeconfig, apply } = await setup();
    expect((await kubectl(kubeconfig, ['apply', '-f', join(REPO, 'deploy/kubernetes/crds/ciliumnetworkpolicies.yaml')])).code).toBe(0);
    await apply(cnp('keep'), cnp('doomed'));
    const { source, events, names } = follow(kubeconfig, ['CiliumNetworkPolicy']);
    await until('synced', () => events.some((e) => e.type === 'synced'));
    const lists = source.status()[0]!.lists;
    await until('the watch', () => server.watchCount === 1);

    await server.stop();
    // The store answers while nobody can reach it: a delete and a change made while the agent is cut off.
    server.remove('cilium.io/v2', 'CiliumNetworkPolicy', 'doomed', 'default');
    server.put({ ...cnp('added'), metadata: { name: 'added', namespace: 'default' } });
    await until('retries', () => (source.status()[0]!.failing?.attempts ?? 0) >= 3);
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    // 100 ms doubling to 400 ms (±20 %): a handful of attempts, not a busy loop.
    expect(source.status()[0]!.failing!.attempts).toBeLessThan(3 + Math.ceil((Date.now() - started) / 300) + 1);
    expect(source.problems()[0]).toMatch(/^CiliumNetworkPolicy: watch failing since .* attempts\): /);
    expect(names('delete')).toEqual([]);

    await server.start();
    await until('the delete after the outage', () => names('delete').length === 1);
    expect(names('delete')).toEqual(['default/doomed']);
    await until('the added one', () => names('upsert').includes('default/added'));
    // Resumed from its resourceVersion: no second listing was needed.
    expect(source.status()[0]!.lists).toBe(lists);
    expect(source.problems()).toEqual([]);
  });

  it('server restarted with its history compacted: 410 Gone, a re-list, and what vanished is reported deleted', async () => {
    const { server, kubeconfig, apply } = await setup({ bookmarkIntervalMs: 3_600_000 });
    expect((await kubectl(kubeconfig, ['apply', '-f', join(REPO, 'deploy/kubernetes/crds/ciliumnetworkpolicies.yaml')])).code).toBe(0);
    await apply(cnp('keep'), cnp('doomed'));
    const { source, events, names } = follow(kubeconfig, ['CiliumNetworkPolicy']);
    await until('synced', () => events.some((e) => e.type === 'synced'));
    expect(source.status()[0]!.lists).toBe(1);
    // Synced is reported as the watch is opened: wait until the server holds it.
    await until('the watch', () => server.watchCount === 1);

    await server.stop();
    server.remove('cilium.io/v2', 'CiliumNetworkPolicy', 'doomed', 'default');
    server.compact();
    await until('a failed attempt', () => (source.status()[0]!.failing?.attempts ?? 0) >= 1);
    expect(names('delete')).toEqual([]);
    await server.start();
    await until('the re-list', () => source.status()[0]!.lists === 2);
    expect(names('delete')).toEqual(['default/doomed']);
    // `keep` did not change: the re-list reports nothing for it.
    expect(names('upsert')).toEqual(['default/doomed', 'default/keep']);
    // The watch resumed from the old resourceVersion (answered 410), then one from the new listing.
    const watches = () => server.requests.filter((r) => r.method === 'WATCH').map((r) => Number(r.query['resourceVersion']));
    await until('the watch from the new listing', () => watches().length >= 3);
    expect(watches().at(-1)).toBeGreaterThan(watches().at(-2)!);
  });
});
