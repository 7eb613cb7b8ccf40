// Standalone resources, for real: the agent (in a private "node" network namespace, so its
// veths and routes stay there) watches a manifest directory; Pod files become endpoints in
// network namespaces of their own, follow label edits, survive restarts and go with the file.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, testPinRoot, spawnInNetns, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-mnode-${RUN}`;
const K8S_NS = `m${RUN}`;
const POD_CIDR = '10.244.9.0/24';

const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

interface ManifestsBody {
  directory: string;
  objects: { kind: string; namespace?: string; name: string; file: string }[];
  invalid: { file: string; path: string; reason: string; line?: number }[];
}


async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const podYaml = (name: string, labels: Record<string, string | number>) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: K8S_NS, labels },
    spec: { containers: [{ name: 'main', image: 'busybox', ports: [{ name: 'http', containerPort: 8080 }] }] },
  });

describe('manifest directory → endpoints (real agent, real network namespaces)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-manifests-e2e-'));
  const manifests = join(dir, 'manifests');
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  const configFile = join(dir, 'agent.yaml');
  let agent: NetnsProcess | undefined;

  function startAgent() {
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    const { child, output } = agent;
    return until(
      'the agent to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`agent exited: ${output()}`);
        const s = await api<AgentStatus>(socket, 'GET', '/v1/status').catch(() => undefined);
        if (s?.body.health === 'failed') throw new Error(`agent failed: ${s.body.problems.join('; ')}`);
        // Degraded is ready too: an invalid manifest (as one test leaves on purpose) degrades it.
        return s?.body.health === 'ok' || s?.body.health === 'degraded' ? true : undefined;
      },
      20_000,
    );
  }

  async function stopAgent() {
    agent?.child.kill('SIGTERM');
    expect(await agent?.done).toBe(0);
  }

  const endpoints = async () => (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.filter((e) => e.namespace === K8S_NS);
  const endpointOf = async (name: string) => (await endpoints()).find((e) => e.name === name && e.containerId === undefined);
  const manifestsReport = async () => (await api<ManifestsBody>(socket, 'GET', '/v1/manifests')).body;

  beforeAll(async () => {
    mkdirSync(manifests);
    const add = tryRun('ip', ['netns', 'add', NODE_NS]);
    if (add.status !== 0) throw new Error(add.stderr);
    tryRun('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
    writeFileSync(
      configFile,
      stringify({
        agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot, nodeName: `m-${RUN}` },
        ipam: { podCIDRs: [POD_CIDR] },
        manifests: { directory: manifests, debounceMs: 50 },
      }),
    );
    writeFileSync(join(manifests, 'namespace.yaml'), stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: K8S_NS } }));
    await startAgent();
  }, 60_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  let web: Endpoint;

  it('turns a Pod file into an endpoint in a new network namespace, with the Pod labels', async () => {
    writeFileSync(join(manifests, 'web.yaml'), podYaml('web', { app: 'web' }));
    web = await until('the endpoint of Pod web', () => endpointOf('web'));
    // The namespace's own labels join, `kubernetes.io/metadata.name` among them (as Kubernetes sets it).
    expect(web.labels).toEqual({ 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': K8S_NS, 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': K8S_NS });
    expect(web.netns).toBe(`/run/netns/cilia_${K8S_NS}_web`);
    const addr = tryRun('ip', ['netns', 'exec', `cilia_${K8S_NS}_web`, 'ip', '-j', 'addr', 'show', 'eth0']);
    expect(addr.status, addr.stderr).toBe(0);
    expect(addr.stdout).toContain(`"local":"${web.ipv4}"`);
    expect(web.ipv4?.startsWith('10.244.9.')).toBe(true);
    const report = await manifestsReport();
    expect(report.directory).toBe(manifests);
    expect(report.objects).toEqual([
      { kind: 'Namespace', name: K8S_NS, file: 'namespace.yaml' },
      { kind: 'Pod', namespace: K8S_NS, name: 'web', file: 'web.yaml' },
    ]);
    expect(report.invalid).toEqual([]);
  }, 30_000);

  it('updates the endpoint labels when the Pod labels are edited (same endpoint, same address)', async () => {
    writeFileSync(join(manifests, 'web.yaml'), podYaml('web', { app: 'web', tier: 'front' }));
    const updated = await until('relabelled endpoint', async () => {
      const e = await endpointOf('web');
      return e?.labels['k8s:tier'] === 'front' ? e : undefined;
    });
    expect(updated).toMatchObject({ id: web.id, ipv4: web.ipv4 });
    expect(updated.labels).toEqual({ 'k8s:app': 'web', 'k8s:tier': 'front', 'k8s:io.kubernetes.pod.namespace': K8S_NS, 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': K8S_NS });
    web = updated;
  }, 30_000);

  it('lists an invalid file with file, field path and reason, and changes nothing', async () => {
    writeFileSync(join(manifests, 'web.yaml'), podYaml('web', { app: 5, tier: 'back' }));
    const report = await until('the invalid file in /v1/manifests', async () => {
      const r = await manifestsReport();
      return r.invalid.length > 0 ? r : undefined;
    });
    expect(report.invalid).toEqual([{ file: 'web.yaml', path: 'metadata.labels.app', reason: expect.stringContaining('expected string'), line: expect.any(Number) }]);
    expect(report.objects).toContainEqual({ kind: 'Pod', namespace: K8S_NS, name: 'web', file: 'web.yaml' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await endpointOf('web')).toMatchObject({ id: web.id, labels: web.labels });
    const warning = agent!
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.file === 'web.yaml' && l.path === 'metadata.labels.app');
    expect(warning).toMatchObject({ level: expect.anything(), subsys: '@cilia/resources' });
    expect(String(warning!.msg)).toContain('web.yaml: metadata.labels.app: ');
    const { body: status } = await api<AgentStatus>(socket, 'GET', '/v1/status');
    expect(status.health).toBe('degraded');
    expect(status.problems).toEqual([expect.stringMatching(/^manifests: invalid file web\.yaml: metadata\.labels\.app: .*expected string.*nothing changed because of it$/)]);

    writeFileSync(join(manifests, 'web.yaml'), podYaml('web', { app: 'web', tier: 'front' }));
    await until('the report to clear', async () => ((await manifestsReport()).invalid.length === 0 ? true : undefined));
  }, 30_000);

  it('keeps its endpoints across a restart (even of a file broken meanwhile), deletes those of Pods removed meanwhile, leaves API-made ones alone', async () => {
    writeFileSync(join(manifests, 'db.yaml'), podYaml('db', { app: 'db' }));
    const db = await until('the endpoint of Pod db', () => endpointOf('db'));
    const manual = await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name: 'manual', namespace: K8S_NS, labels: { 'k8s:app': 'manual' } });
    expect(manual.status, JSON.stringify(manual.body)).toBe(201);

    await stopAgent();
    unlinkSync(join(manifests, 'db.yaml'));
    writeFileSync(join(manifests, 'web.yaml'), podYaml('web', { app: 'web', tier: 'front' }).replace('name: web', 'name: Web_1'));
    await startAgent();

    await until('the endpoint of the removed Pod db to go', async () => ((await endpointOf('db')) ? undefined : true));
    expect(existsSync(db.netns)).toBe(false);
    await new Promise((r) => setTimeout(r, 1000)); // time enough to delete web too, were it going to
    expect(await endpointOf('web')).toMatchObject({ id: web.id, ipv4: web.ipv4, labels: web.labels });
    expect(await endpointOf('manual')).toMatchObject({ id: manual.body.id });
    expect((await manifestsReport()).invalid).toEqual([{ file: 'web.yaml', path: 'metadata.name', reason: expect.stringContaining('DNS subdomain'), line: expect.any(Number) }]);
    await api(socket, 'DELETE', `/v1/endpoints/${manual.body.id}`);
  }, 60_000);

  it('deletes the endpoint and its network namespace when the Pod file is deleted', async () => {
    unlinkSync(join(manifests, 'web.yaml'));
    await until('the endpoint of Pod web to go', async () => ((await endpointOf('web')) ? undefined : true));
    expect(existsSync(web.netns)).toBe(false);
    expect((await manifestsReport()).objects).toEqual([{ kind: 'Namespace', name: K8S_NS, file: 'namespace.yaml' }]);
  }, 30_000);
});
