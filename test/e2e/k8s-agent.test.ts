// The agent in Kubernetes mode (@cilia/plugin-kubernetes) against the test API server, on real
// packets: policies applied with kubectl are enforced between endpoints; while the API server
// is away nothing leaves the datapath; when it comes back with its history compacted (410 Gone)
// the agent re-lists and a policy deleted meanwhile is removed. Pods created with kubectl and
// attached by cilia-cni as a runtime attaches them (K8S_POD_* args) take their Pods' labels, and
// a `kubectl label` changes their identity and the policy that selects them.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import type { AgentStatus, Endpoint, Identity } from '@cilia/core';
import type { PolicyListResponse } from '@cilia/api-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { api, deletePodNetns, REPO, startAgent, type RunningAgent } from '../support/agent.js';
import { KubeApiServer, kubectl } from '../support/k8s-api-server/index.js';

const tag = randomBytes(3).toString('hex');
const NAMESPACE = `k8s${tag}`;
const NODE = `k8s-node-${tag}`;
const POD_CIDR = `10.${100 + (parseInt(tag.slice(0, 2), 16) % 40)}.${parseInt(tag.slice(2, 4), 16)}.0/24`;
const EGRESS = `k8seg${tag}`;
const CNI = join(REPO, 'apps/cni/bin/cilia-cni.js');
const runtimeNetns: string[] = [];

let server: KubeApiServer;
let kubeconfig: string;
let agent: RunningAgent;

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const apply = async (...objects: object[]) => {
  const r = await kubectl(kubeconfig, ['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
  expect(r.stderr).toBe('');
};

/** Whether one ping from `from` reaches `to` and comes back. */
async function pings(from: Endpoint, to: Endpoint, waitSeconds = 1): Promise<boolean> {
  const child = spawn('ip', ['netns', 'exec', from.netns.replace('/run/netns/', ''), 'ping', '-c', '1', '-W', String(waitSeconds), to.ipv4!], { stdio: 'ignore' });
  const [code] = (await once(child, 'close')) as [number | null];
  return code === 0;
}

async function endpoint(name: string, app: string): Promise<Endpoint> {
  const r = await api<Endpoint>(agent.socket, 'POST', '/v1/endpoints', { name, namespace: NAMESPACE, labels: { 'k8s:app': app } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

/** What a container runtime does for a Pod: a network namespace, then cilia-cni ADD with the Pod's K8S_POD_* args. */
async function attach(pod: string): Promise<Endpoint> {
  const netns = `k8s-cni-${tag}-${pod}`;
  ip('netns', 'add', netns);
  runtimeNetns.push(netns);
  const r = await cni('ADD', pod, netns);
  expect(r.code, r.stdout).toBe(0);
  const endpoints = (await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints')).body;
  return endpoints.find((e) => e.containerId === `ctr-${tag}-${pod}`)!;
}

async function cni(command: 'ADD' | 'DEL', pod: string, netns: string): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(CNI, [], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: `ctr-${tag}-${pod}`,
      CNI_NETNS: `/run/netns/${netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NAMESPACE};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=ctr-${tag}-${pod}`,
    },
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stdin.end(JSON.stringify({ cniVersion: '1.0.0', name: 'cilia', type: 'cilia-cni', socket: agent.socket }));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout };
}

async function endpointOf(pod: string): Promise<Endpoint> {
  return (await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints')).body.find((e) => e.containerId === `ctr-${tag}-${pod}`)!;
}

async function identityLabels(pod: string): Promise<Record<string, string>> {
  const e = await endpointOf(pod);
  const r = await api<Identity>(agent.socket, 'GET', `/v1/identities/${e.identity}`);
  return r.status === 200 ? { ...r.body.labels } : {};
}

const kubePod = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NAMESPACE, labels },
  spec: { nodeName: NODE, containers: [{ name: 'c', image: 'busybox' }] },
});

async function policies(): Promise<string[]> {
  return (await api<PolicyListResponse>(agent.socket, 'GET', '/v1/policy')).body.rules.map((r) => `${r.kind}/${r.name}`);
}

async function problems(): Promise<readonly string[]> {
  return (await api<AgentStatus>(agent.socket, 'GET', '/v1/status')).body.problems;
}

beforeAll(async () => {
  server = new KubeApiServer({ token: `agent-${tag}` });
  await server.start();
  kubeconfig = server.writeKubeconfig();
  expect((await kubectl(kubeconfig, ['apply', '-f', join(REPO, 'deploy/kubernetes/crds')])).code).toBe(0);
  expect((await kubectl(kubeconfig, ['create', 'namespace', NAMESPACE])).code).toBe(0);
  ip('link', 'add', EGRESS, 'type', 'veth', 'peer', 'name', `k8sep${tag}`);
  ip('addr', 'add', `198.19.${parseInt(tag.slice(0, 2), 16)}.${parseInt(tag.slice(2, 4), 16)}/32`, 'dev', EGRESS);
  ip('link', 'set', EGRESS, 'up');
  agent = await startAgent({
    config: {
      plugins: ['@cilia/plugin-kubernetes'],
      kubernetes: { kubeconfig, retry: { initialMs: 200, maxMs: 1000 } },
      // Identities as CiliumIdentity objects: no etcd, no embedded KvStore in the way.
      identity: { mode: 'crd' },
      agent: { nodeName: NODE },
      ipam: { podCIDRs: [POD_CIDR] },
      datapath: { egressDevice: EGRESS, masquerade: false },
    },
    readyTimeoutMs: 60_000,
  });
}, 120_000);

afterAll(async () => {
  if (agent) {
    for (const netns of runtimeNetns) await cni('DEL', netns.slice(`k8s-cni-${tag}-`.length), netns).catch(() => undefined);
    for (const e of (await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints').catch(() => ({ body: [] as Endpoint[] }))).body) await api(agent.socket, 'DELETE', `/v1/endpoints/${e.id}`).catch(() => undefined);
    await agent.stop();
  }
  deletePodNetns(NAMESPACE);
  for (const netns of runtimeNetns) spawnSync('ip', ['netns', 'del', netns]);
  try {
    ip('link', 'del', EGRESS);
  } catch {
    // already gone
  }
  await server?.dispose();
});

describe('the agent in Kubernetes mode', () => {
  it("gives a Pod attached by cilia-cni its Pod's labels; kubectl label changes its identity and the policy that selects it", async () => {
    await apply(kubePod('srv', { app: 'srv' }), kubePod('cli', { app: 'cli', tier: 'blocked' }));
    const srv = await attach('srv');
    const cli = await attach('cli');
    // The runtime's endpoints: the Pods' namespace and name, their Pods' labels (none in the CNI config).
    expect([srv.namespace, srv.name, cli.name]).toEqual([NAMESPACE, 'srv', 'cli']);
    await expect.poll(() => identityLabels('srv'), { timeout: 10_000 }).toMatchObject({ 'k8s:app': 'srv', 'k8s:io.kubernetes.pod.namespace': NAMESPACE, [`k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name`]: NAMESPACE });
    await expect.poll(() => identityLabels('cli'), { timeout: 10_000 }).toMatchObject({ 'k8s:app': 'cli', 'k8s:tier': 'blocked' });
    // identity.mode: crd — the identity is a CiliumIdentity object carrying the Pod's labels.
    const srvId = (await endpointOf('srv')).identity;
    const srvIdentity = server.objects('cilium.io/v2', 'CiliumIdentity').find((o) => o.metadata.name === String(srvId));
    expect(srvIdentity?.['security-labels']).toMatchObject({ 'k8s:app': 'srv', 'k8s:io.kubernetes.pod.namespace': NAMESPACE });
    // The agent made no endpoints of its own for these Pods (the runtime attaches them).
    expect((await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints')).body.filter((e) => e.namespace === NAMESPACE).map((e) => e.containerId)).toEqual([`ctr-${tag}-srv`, `ctr-${tag}-cli`]);

    // srv admits only tier=trusted.
    await apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'srv-from-trusted', namespace: NAMESPACE },
      spec: { endpointSelector: { matchLabels: { app: 'srv' } }, ingress: [{ fromEndpoints: [{ matchLabels: { tier: 'trusted' } }] }] },
    });
    const [srvNow, cliNow] = [await endpointOf('srv'), await endpointOf('cli')];
    await expect.poll(() => pings(cliNow, srvNow), { timeout: 10_000 }).toBe(false);
    const before = cliNow.identity;

    const relabelled = Date.now();
    expect((await kubectl(kubeconfig, ['label', 'pod', 'cli', '-n', NAMESPACE, 'tier=trusted', '--overwrite'])).code).toBe(0);
    const labelledMs = Date.now() - relabelled;
    await expect.poll(async () => (await endpointOf('cli')).identity, { timeout: 10_000, interval: 20 }).not.toBe(before);
    const identityMs = Date.now() - relabelled;
    await expect.poll(() => pings(cliNow, srvNow, 0.2), { timeout: 10_000, interval: 20 }).toBe(true);
    const allowedMs = Date.now() - relabelled;
    expect(server.objects('cilium.io/v2', 'CiliumIdentity').find((o) => o.metadata.name === String(before))?.['security-labels']).toMatchObject({ 'k8s:tier': 'blocked' });
    expect(await identityLabels('cli')).toMatchObject({ 'k8s:tier': 'trusted' });
    console.log(`kubectl label (returned after ${labelledMs} ms) → new identity after ${identityMs} ms, admitted by policy after ${allowedMs} ms`);

    // And back: blocked again.
    expect((await kubectl(kubeconfig, ['label', 'pod', 'cli', '-n', NAMESPACE, 'tier-'])).code).toBe(0);
    await expect.poll(() => pings(cliNow, srvNow), { timeout: 10_000 }).toBe(false);
    await kubectl(kubeconfig, ['delete', 'ciliumnetworkpolicies', 'srv-from-trusted', '-n', NAMESPACE]);
    await expect.poll(() => policies(), { timeout: 10_000 }).toEqual([]);
  }, 60_000);

  it('follows the API server: a kubectl-applied CiliumNetworkPolicy is enforced; through an outage and a 410 Gone nothing leaves the datapath, and a policy deleted meanwhile goes after', async () => {
    expect((await agent.status()).plugins).toContainEqual(expect.objectContaining({ name: '@cilia/plugin-kubernetes', state: 'started' }));
    const web = await endpoint('web', 'web');
    const db = await endpoint('db', 'db');
    const other = await endpoint('other', 'other');
    expect(await pings(other, db)).toBe(true);

    await apply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'db-from-web', namespace: NAMESPACE },
      spec: { endpointSelector: { matchLabels: { app: 'db' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }] },
    });
    await expect.poll(() => policies(), { timeout: 10_000 }).toEqual(['CiliumNetworkPolicy/db-from-web']);
    await expect.poll(() => pings(other, db), { timeout: 10_000 }).toBe(false);
    expect(await pings(web, db)).toBe(true);

    // The API server goes away; while it is away the policy is deleted and the history compacted.
    await server.stop();
    server.remove('cilium.io/v2', 'CiliumNetworkPolicy', 'db-from-web', NAMESPACE);
    server.compact();
    await expect.poll(() => problems(), { timeout: 10_000 }).toContainEqual(expect.stringMatching(/^kubernetes: CiliumNetworkPolicy: watch failing since /));
    // Cut off, the agent keeps what it has: endpoints, policy, verdicts.
    await new Promise((r) => setTimeout(r, 2000));
    expect((await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints')).body.filter((e) => !e.containerId).map((e) => e.id).sort()).toEqual([web.id, db.id, other.id].sort());
    expect(await policies()).toEqual(['CiliumNetworkPolicy/db-from-web']);
    expect(await pings(web, db)).toBe(true);
    expect(await pings(other, db)).toBe(false);

    // Back (same port, same objects): a 410 Gone on the resumed watch, a re-list, the deletion seen.
    await server.start();
    await expect.poll(() => policies(), { timeout: 15_000 }).toEqual([]);
    await expect.poll(() => pings(other, db), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => problems(), { timeout: 10_000 }).toEqual([]);
    const relisted = server.requests.filter((r) => r.method === 'GET' && r.path === '/apis/cilium.io/v2/ciliumnetworkpolicies');
    expect(relisted.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
