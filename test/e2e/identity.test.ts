// Identities with the real agent: the embedded KvStore and the identity allocator are default
// plugins, endpoints are real (veths, maps) inside a private "node" network namespace.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint, Identity } from '@cilia/core';
import { BpfMap } from '@cilia/bpf';
import { datapathMaps } from '@cilia/datapath';
import { AGENT_MAIN, api, REPO, testPinRoot, spawnInNetns, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-idn-${RUN}`;
const NS_A = `ida${RUN}`;
const NS_B = `idb${RUN}`;
const NS_C = `idc${RUN}`;
const CLI = join(REPO, 'node_modules/.bin/cilia');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

describe('identities with the real agent (embedded KvStore)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-id-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  const configFile = join(dir, 'agent.yaml');
  const children: ChildProcess[] = [];
  let agent: NetnsProcess | undefined;
  const cli = (args: string[]) => spawnSync(CLI, ['--socket', socket, ...args], { encoding: 'utf8' });

  function spawnAgent(): NetnsProcess {
    const agentProcess = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    children.push(agentProcess.child);
    return agentProcess;
  }

  async function waitReady(a: NetnsProcess, timeoutMs = 20_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.output()}`);
      const s = await api<AgentStatus>(socket, 'GET', '/v1/status').catch(() => undefined);
      if (s?.body.health === 'ok') return;
      if (s && (s.body.health === 'failed' || s.body.health === 'degraded')) throw new Error(`agent health ${s.body.health}: ${s.body.problems.join('; ')}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`agent not ready: ${a.output()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function create(name: string, namespace: string, labels: Record<string, string>): Promise<Endpoint> {
    const r = await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name, namespace, labels });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  const listIdentities = (): Identity[] => {
    const r = cli(['identity', 'list', '-o', 'json']);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Identity[];
  };

  beforeAll(async () => {
    sh('ip', ['netns', 'add', NODE_NS]);
    // An uplink (a veth whose peer stays in the node) with a default route: the datapath's egress device, touching nothing outside.
    sh('ip', ['-n', NODE_NS, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext0p']);
    sh('ip', ['-n', NODE_NS, 'link', 'set', 'ext0p', 'up']);
    sh('ip', ['-n', NODE_NS, 'addr', 'add', '172.31.251.1/24', 'dev', 'ext0']);
    sh('ip', ['-n', NODE_NS, 'link', 'set', 'ext0', 'up']);
    sh('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', NODE_NS, 'route', 'add', 'default', 'via', '172.31.251.2']);
    mkdirSync(join(dir, 'manifests'));
    writeFileSync(
      configFile,
      stringify({
        agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot, nodeName: `idn-${RUN}` },
        ipam: { podCIDRs: ['10.244.9.0/24'] },
        manifests: { directory: join(dir, 'manifests'), debounceMs: 50 },
      }),
    );
    agent = spawnAgent();
    await waitReady(agent);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if ([NS_A, NS_B, NS_C].some((n) => ns.startsWith(`cilia_${n}_`))) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  let byName: Record<string, Endpoint> = {};

  it('gives endpoints with the same identity-relevant labels one id and different labels different ids', async () => {
    const made = await Promise.all([
      create('web1', NS_A, { 'k8s:app': 'web', 'k8s:pod-template-hash': 'aaa' }),
      create('web2', NS_A, { 'k8s:app': 'web', 'k8s:pod-template-hash': 'bbb' }),
      create('web3', NS_A, { 'k8s:app': 'web', 'k8s:controller-revision-hash': 'c1' }),
      create('db1', NS_A, { 'k8s:app': 'db' }),
      create('web-b', NS_B, { 'k8s:app': 'web' }),
    ]);
    byName = Object.fromEntries(made.map((e) => [e.name, e]));
    const web = byName.web1!.identity;
    expect(web).toBeGreaterThanOrEqual(256);
    expect(web).toBeLessThanOrEqual(65535);
    expect(byName.web2!.identity).toBe(web);
    expect(byName.web3!.identity).toBe(web);
    expect(byName.db1!.identity).not.toBe(web);
    expect(byName['web-b']!.identity).not.toBe(web); // another namespace is another identity
    expect(new Set([web, byName.db1!.identity, byName['web-b']!.identity]).size).toBe(3);
    // The datapath carries the real identity.
    const map = BpfMap.openPinned(join(bpfRoot, 'cilia_endpoints'), { key: datapathMaps.EndpointKey, value: datapathMaps.EndpointInfo });
    try {
      for (const e of made) expect(map.lookup(e.ipv4!)).toMatchObject({ endpointId: e.id, identity: e.identity });
    } finally {
      map.close();
    }
  });

  it('lists and shows them with cilia identity list|get', () => {
    const list = listIdentities();
    const web = list.find((i) => i.id === byName.web1!.identity);
    const nsName = { 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': NS_A };
    expect(web).toEqual({ id: byName.web1!.identity, scope: 'cluster', labels: { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': NS_A, ...nsName } });
    expect(list.find((i) => i.id === byName.db1!.identity)?.labels).toEqual({ 'k8s:app': 'db', 'k8s:io.kubernetes.pod.namespace': NS_A, ...nsName });
    expect(list.find((i) => i.id === 5)).toEqual({ id: 5, scope: 'reserved', labels: { 'reserved:init': '' } });
    expect(list.filter((i) => i.scope === 'cluster').map((i) => i.id).sort()).toEqual([...new Set([byName.web1!.identity, byName.db1!.identity, byName['web-b']!.identity])].sort());
    const table = cli(['identity', 'list']);
    expect(table.stdout).toMatch(new RegExp(`^${byName.db1!.identity}\\s+cluster\\s+k8s:app=db,k8s:io\\.cilium\\.k8s\\.namespace\\.labels\\.kubernetes\\.io/metadata\\.name=${NS_A},k8s:io\\.kubernetes\\.pod\\.namespace=${NS_A}$`, 'm'));
    const one = cli(['identity', 'get', String(byName.db1!.identity), '-o', 'json']);
    expect(JSON.parse(one.stdout)).toMatchObject({ id: byName.db1!.identity, scope: 'cluster' });
    const missing = cli(['identity', 'get', '4000000']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('identity 4000000 not found');
    expect(cli(['identity', 'get', 'x']).status).toBe(2);
  });

  it('refuses a label the identity key layout cannot carry with a 400 naming it, and leaves nothing behind', async () => {
    const before = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.length;
    const r = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'bad', namespace: NS_A, labels: { 'k8s:a;b': 'x' } });
    expect(r.status).toBe(400);
    expect(r.body.path).toBe('labels.k8s:a;b');
    expect((await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.length).toBe(before);
  });

  it('restores the same identities after SIGKILL and a restart, and reuses them for new endpoints', async () => {
    agent!.child.kill('SIGKILL');
    await agent!.done;
    agent = spawnAgent();
    await waitReady(agent);
    const after = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body;
    for (const e of Object.values(byName)) expect(after.find((a) => a.id === e.id)?.identity).toBe(e.identity);
    const web4 = await create('web4', NS_A, { 'k8s:app': 'web' });
    expect(web4.identity).toBe(byName.web1!.identity);
    const list = listIdentities();
    expect(list.filter((i) => i.scope === 'cluster').length).toBe(3);
  });

  it('keeps the id while endpoints still use it, after others holding it are deleted', async () => {
    const r = await api<Endpoint[]>(socket, 'GET', '/v1/endpoints');
    expect(r.status).toBe(200);
    // Deleting endpoints releases their references; the ids stay (grace period) and are reused.
    for (const name of ['web2', 'web3']) expect((await api(socket, 'DELETE', `/v1/endpoints/${byName[name]!.id}`)).status).toBe(200);
    const again = await create('web5', NS_A, { 'k8s:app': 'web' });
    expect(again.identity).toBe(byName.web1!.identity);
  });

  it("makes the namespace's labels (from a Namespace manifest) part of a pod's identity", async () => {
    writeFileSync(join(dir, 'manifests', 'ns.yaml'), `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS_C}\n  labels:\n    team: blue\n`);
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync(
      join(dir, 'manifests', 'pod.yaml'),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: shop\n  namespace: ${NS_C}\n  labels:\n    app: shop\n    pod-template-hash: 7f9c\nspec:\n  containers:\n    - name: main\n      image: shop\n`,
    );
    let shop: Endpoint | undefined;
    await expect
      .poll(async () => (shop = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.find((e) => e.name === 'shop' && e.namespace === NS_C)), { timeout: 15_000, interval: 200 })
      .toBeDefined();
    const got = cli(['identity', 'get', String(shop!.identity), '-o', 'json']);
    expect(JSON.parse(got.stdout)).toEqual({
      id: shop!.identity,
      scope: 'cluster',
      labels: {
        'k8s:app': 'shop',
        'k8s:io.kubernetes.pod.namespace': NS_C,
        'k8s:io.cilium.k8s.namespace.labels.team': 'blue',
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': NS_C,
      },
    });
  });
});
