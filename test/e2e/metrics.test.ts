// The agent's /metrics with the datapath's and policy's collectors, for real: the agent runs in
// a private "node" network namespace (its metrics port is private to it), two pods behind
// veths, enforcement `always`. A ping the policy denies shows up as
// cilia_drop_count_total{reason="Policy denied"}; an import shows up as its revision, its rule
// count, and the time the endpoints took to realize it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-met-${RUN}`;
const K8S_NS = `met${RUN}`;
const METRICS = '127.0.0.1:9962';

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

/** `GET /metrics` from inside the node namespace, where the agent listens. */
function scrape(): string {
  const fetchScript = `fetch('http://${METRICS}/metrics').then(async (r) => { if (!r.ok) throw new Error('HTTP ' + r.status); process.stdout.write(await r.text()); })`;
  const r = run('ip', ['netns', 'exec', NODE_NS, process.execPath, '-e', fetchScript]);
  if (r.status !== 0) throw new Error(`scrape failed: ${r.stderr}`);
  return r.stdout;
}

/** The value of the sample `name{labels}` (labels in any order), or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: K8S_NS }, spec });

describe('agent /metrics: datapath and policy collectors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-met-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  let agent: NetnsProcess | undefined;
  let client: Endpoint;
  let server: Endpoint;

  const ping = (from: Endpoint, to: Endpoint) => run('ip', ['netns', 'exec', from.netns.replace('/run/netns/', ''), 'ping', '-c', '1', '-W', '1', to.ipv4!]).status === 0;

  async function createEndpoint(name: string, app: string): Promise<Endpoint> {
    const r = await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name, namespace: K8S_NS, labels: { 'k8s:app': app } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  beforeAll(async () => {
    expect(run('ip', ['netns', 'add', NODE_NS]).status).toBe(0);
    run('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
    const config = {
      agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: METRICS, bpfRoot, nodeName: `met-${RUN}` },
      ipam: { podCIDRs: ['10.244.41.0/24'] },
      policy: { enforcement: 'always' },
      datapath: { masquerade: false },
    };
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, stringify(config));
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', file]);
    await waitHealthy(socket, agent);
    client = await createEndpoint('client', 'client');
    server = await createEndpoint('server', 'server');
  }, 90_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    for (const ns of run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) run('ip', ['netns', 'delete', ns]);
    }
    run('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts a packet the policy denies under cilia_drop_count_total{reason="Policy denied"}, with its bytes', async () => {
    const before = scrape();
    expect(sample(before, 'cilia_endpoint_state', { state: 'ready' })).toBe(2);
    expect(sample(before, 'cilia_policy_endpoints_fail_closed')).toBe(0);
    expect(ping(client, server)).toBe(false);
    // Under `always` with no policy, the client's own egress is where the ping stops.
    await expect.poll(() => sample(scrape(), 'cilia_drop_count_total', { reason: 'Policy denied', direction: 'EGRESS' }) ?? 0, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(sample(scrape(), 'cilia_drop_bytes_total', { reason: 'Policy denied', direction: 'EGRESS' })).toBeGreaterThan(0);
  }, 60_000);

  it('reports an import: its revision, the rules loaded, the endpoints\' implementation delay; the traffic it allows is forwarded', async () => {
    const imported = await api<{ revision: number }>(socket, 'POST', '/v1/policy', {
      documents: [
        cnp('client-out', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'server' } }] }] }),
        cnp('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }] }),
      ],
    });
    expect(imported.status, JSON.stringify(imported.body)).toBe(200);
    const { revision } = imported.body;
    await expect.poll(async () => (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.every((e) => e.policyRevision >= revision), { timeout: 10_000 }).toBe(true);
    const text = scrape();
    expect(sample(text, 'cilia_policy_max_revision')).toBe(revision);
    expect(sample(text, 'cilia_policy')).toBe(2);
    // Both endpoints changed with this revision: one observation each at least.
    expect(sample(text, 'cilia_policy_implementation_delay_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'cilia_policy_implementation_delay_seconds_bucket', { le: '+Inf' })).toBe(sample(text, 'cilia_policy_implementation_delay_seconds_count'));
    const forwardedBefore = sample(text, 'cilia_forward_count_total', { direction: 'INGRESS' }) ?? 0;
    expect(ping(client, server)).toBe(true);
    await expect.poll(() => sample(scrape(), 'cilia_forward_count_total', { direction: 'INGRESS' }) ?? 0, { timeout: 10_000 }).toBeGreaterThan(forwardedBefore);
  }, 60_000);

  it('counts a refused import, and serves no collector error', async () => {
    const refused = await api(socket, 'POST', '/v1/policy', { documents: [cnp('broken', { endpointSelector: 'nope' })] });
    expect(refused.status).toBe(400);
    const text = scrape();
    expect(sample(text, 'cilia_policy_import_errors_total')).toBe(1);
    expect(sample(text, 'cilia_plugin_up', { plugin: '@cilia/datapath', state: 'started' })).toBe(1);
    expect(text).not.toContain('cilia_agent_metrics_collector_errors_total{');
    expect(agent!.output()).not.toContain('metrics collector');
  }, 30_000);
});
