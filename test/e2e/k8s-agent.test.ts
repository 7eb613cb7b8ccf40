// The agent in Kubernetes mode (@cilia/plugin-kubernetes) against the test API server, on real
// packets: policies applied with kubectl are enforced between endpoints; while the API server
// is away nothing leaves the datapath; when it comes back with its history compacted (410 Gone)
// the agent re-lists and a policy deleted meanwhile is removed.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import type { AgentStatus, Endpoint } from '@cilia/core';
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

let server: KubeApiServer;
let kubeconfig: string;
let agent: RunningAgent;

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const apply = async (...objects: object[]) => {
  const r = await kubectl(kubeconfig, ['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
  expect(r.stderr).toBe('');
};

/** Whether one ping from `from` reaches `to` and comes back. */
async function pings(from: Endpoint, to: Endpoint): Promise<boolean> {
  const child = spawn('ip', ['netns', 'exec', from.netns.replace('/run/netns/', ''), 'ping', '-c', '1', '-W', '1', to.ipv4!], { stdio: 'ignore' });
  const [code] = (await once(child, 'close')) as [number | null];
  return code === 0;
}

async function endpoint(name: string, app: string): Promise<Endpoint> {
  const r = await api<Endpoint>(agent.socket, 'POST', '/v1/endpoints', { name, namespace: NAMESPACE, labels: { 'k8s:app': app } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

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
      agent: { nodeName: NODE },
      ipam: { podCIDRs: [POD_CIDR] },
      datapath: { egressDevice: EGRESS, masquerade: false },
    },
    readyTimeoutMs: 60_000,
  });
}, 120_000);

afterAll(async () => {
  if (agent) {
    for (const e of (await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints').catch(() => ({ body: [] as Endpoint[] }))).body) await api(agent.socket, 'DELETE', `/v1/endpoints/${e.id}`).catch(() => undefined);
    await agent.stop();
  }
  deletePodNetns(NAMESPACE);
  try {
    ip('link', 'del', EGRESS);
  } catch {
    // already gone
  }
  await server?.dispose();
});

describe('the agent in Kubernetes mode', () => {
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
    expect((await api<Endpoint[]>(agent.socket, 'GET', '/v1/endpoints')).body.map((e) => e.id).sort()).toEqual([web.id, db.id, other.id].sort());
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
