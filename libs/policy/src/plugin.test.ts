import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiRequestError,
  invokeRoute,
  definePlugin,
  PluginHost,
  resolvePluginSet,
  Tokens,
  type AgentConfig,
  type AnyPluginDefinition,
  type ApiRoute,
  type IpCache,
  type IpCacheDelta,
  type IpCacheEntry,
  type Logger,
  type PolicyDelta,
} from '@cilia/core';
import { identityAllocatorPlugin, identityConfig } from '@cilia/identity';
import { embeddedKvStoreConfig, embeddedKvStorePlugin } from '@cilia/kvstore';
import { manifestsConfig, manifestsPlugin } from '@cilia/resources';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { policyConfig, policyPlugin } from './plugin.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

/** Batches the policy plugin wrote, in memory: the ipcache as the datapath would get them. */
class RecordingIpCache implements IpCache {
  readonly entries = new Map<string, IpCacheEntry>();
  async apply(delta: IpCacheDelta): Promise<void> {
    for (const p of delta.deletes) this.entries.delete(p);
    for (const e of delta.upserts) this.entries.set(e.prefix, e);
  }
  lookup(ip: string): IpCacheEntry | undefined {
    return this.entries.get(ip);
  }
  list(): readonly IpCacheEntry[] {
    return [...this.entries.values()];
  }
  subscribe(): () => void {
    return () => undefined;
  }
}

const ipcachePlugin = (ipcache: IpCache) =>
  definePlugin({
    name: 'test-ipcache',
    version: '0.0.0',
    apiVersion: '^1',
    provides: [Tokens.IpCache],
    register(bind) {
      bind(Tokens.IpCache).toConstant(ipcache);
    },
  });

const cnp = (name: string, namespace: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
const allowFrom = (app: string, port: string) => ({
  endpointSelector: { matchLabels: { app: 'web' } },
  ingress: [{ fromEndpoints: [{ matchLabels: { app } }], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }],
});
const allowPort = (port: string) => ({ endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] });
const web = { endpointId: 1, identity: 1000, labels: { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'x' } };

interface Agent {
  readonly host: PluginHost;
  readonly ipcache: RecordingIpCache;
  routes(): ApiRoute[];
  call(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<{ status: number; body: unknown }>;
  problems(): string[];
}

let dir: string;
let manifests: string;
const running: PluginHost[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cilia-policy-plugin-'));
  manifests = join(dir, 'manifests');
  mkdirSync(manifests);
});
afterEach(async () => {
  for (const host of running.splice(0)) await host.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The default providers the policy plugin runs with in the agent, in process, on a temp state dir. */
async function startAgent(policy: Record<string, unknown> = {}): Promise<Agent> {
  const ipcache = new RecordingIpCache();
  const plugins: AnyPluginDefinition[] = [embeddedKvStorePlugin, manifestsPlugin, identityAllocatorPlugin, policyPlugin, ipcachePlugin(ipcache)];
  const set = resolvePluginSet(
    plugins.map((definition) => ({ definition, origin: 'default' as const })),
    { coreVersion: '1.0.0', hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle] },
  );
  const sections = new Map<string, unknown>([
    [embeddedKvStorePlugin.name, embeddedKvStoreConfig.parse({})],
    [manifestsPlugin.name, manifestsConfig.parse({ directory: manifests, debounceMs: 20, resyncIntervalMs: 0 })],
    [identityAllocatorPlugin.name, identityConfig.parse({})],
    [policyPlugin.name, policyConfig.parse(policy)],
  ]);
  const agent = { nodeName: 'policy-test', stateDir: join(dir, 'state'), shutdownTimeoutMs: 5000 } as AgentConfig;
  const host = new PluginHost({ set, agent, logger: silent, sections });
  running.push(host);
  await host.start();
  const routes = () => host.resolver().getAll(Tokens.ApiRoutes).flat();
  return {
    host,
    ipcache,
    routes,
    async call(method, path, body, query = {}) {
      const route = routes().find((r) => r.method === method && r.path === path);
      if (!route) throw new Error(`no route ${method} ${path}`);
      try {
        const res = await invokeRoute(route, { query, body });
        return { status: res.status ?? 200, body: res.body };
      } catch (err) {
        if (!(err instanceof ApiRequestError)) throw err;
        return { status: err.status, body: { error: err.message, ...(err.path ? { path: err.path } : {}) } };
      }
    },
    problems: () => host.resolver().getAll(Tokens.HealthReporters).flatMap((r) => r.problems().map((p) => `${r.name}: ${p}`)),
  };
}

async function stop(agent: Agent): Promise<void> {
  running.splice(running.indexOf(agent.host), 1);
  await agent.host.stop();
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ruleNames = (agent: Agent) => agent.host.resolver().get(Tokens.PolicyRepository).rules().map((r) => `${r.kind}/${r.namespace ?? ''}/${r.name}`);

describe('the policy plugin in the agent', () => {
  it('imports through the API, lists, answers 400 naming the field, deletes, and 404s nothing', async () => {
    const agent = await startAgent();
    const repo = agent.host.resolver().get(Tokens.PolicyRepository);
    expect(repo.enforcementMode).toBe('default');

    expect(await agent.call('POST', '/v1/policy', { documents: [cnp('allow-api', 'x', allowFrom('api', '80'))] })).toEqual({ status: 200, body: { revision: 1 } });
    const deltas: PolicyDelta[] = [];
    const initial = repo.resolve(web);
    repo.watch(web, (d) => deltas.push(d));
    expect(initial.enforcement).toEqual({ ingress: true, egress: false });

    const bad = await agent.call('POST', '/v1/policy', { documents: [cnp('ok', 'x', allowFrom('api', '81')), cnp('bad', 'x', allowFrom('api', '99999'))] });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ path: expect.stringMatching(/^documents\[1\]\.spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port$/) });
    // All or nothing: the valid document of the refused import is not there either.
    expect(ruleNames(agent)).toEqual(['CiliumNetworkPolicy/x/allow-api']);
    expect(repo.revision()).toBe(1);

    expect((await agent.call('POST', '/v1/policy', { documents: 'nope' })).body).toEqual({ error: 'expected a list of policy documents', path: 'documents' });
    expect((await agent.call('POST', '/v1/policy', { documents: [] })).status).toBe(400);

    const listed = await agent.call('GET', '/v1/policy');
    expect(listed.body).toMatchObject({ revision: 1, enforcement: 'default', rules: [{ kind: 'CiliumNetworkPolicy', namespace: 'x', name: 'allow-api', revision: 1 }] });

    expect(await agent.call('DELETE', '/v1/policy', undefined, { name: 'allow-api', namespace: 'y' })).toMatchObject({ status: 404, body: { path: 'name' } });
    expect(await agent.call('DELETE', '/v1/policy', undefined, {})).toMatchObject({ status: 400, body: { path: 'name' } });
    expect(await agent.call('DELETE', '/v1/policy', undefined, { all: 'true', name: 'x' })).toMatchObject({ status: 400, body: { path: 'all' } });
    expect(await agent.call('DELETE', '/v1/policy', undefined, { name: 'allow-api' })).toEqual({
      status: 200,
      body: { revision: 2, deleted: [{ kind: 'CiliumNetworkPolicy', namespace: 'x', name: 'allow-api' }] },
    });
    expect(deltas.map((d) => [d.revision, d.enforcement])).toEqual([[2, { ingress: false, egress: false }]]);
    expect(await agent.call('DELETE', '/v1/policy', undefined, { all: 'true' })).toMatchObject({ status: 404, body: { path: 'all' } });
    expect(agent.problems()).toEqual([]);
  });

  it('traces with the engine and refuses a malformed query naming the field', async () => {
    const agent = await startAgent();
    await agent.call('POST', '/v1/policy', { documents: [cnp('allow-api', 'x', allowFrom('api', '80'))] });
    const query = (dport: number, app: string) => ({ src: { labels: { 'k8s:app': app, 'k8s:io.kubernetes.pod.namespace': 'x' } }, dst: { labels: web.labels }, dport, protocol: 'tcp' });
    const allowed = await agent.call('POST', '/v1/policy/trace', query(80, 'api'));
    expect(allowed.body).toMatchObject({ verdict: 'allowed', ingress: { enforced: true, allowedBy: [expect.stringContaining('allow-api')] }, egress: { enforced: false } });
    expect((await agent.call('POST', '/v1/policy/trace', query(81, 'api'))).body).toMatchObject({ verdict: 'denied' });
    expect((await agent.call('POST', '/v1/policy/trace', query(80, 'other'))).body).toMatchObject({ verdict: 'denied' });
    expect((await agent.call('POST', '/v1/policy/trace', { ...query(80, 'api'), dport: 70000 })).body).toMatchObject({ path: 'dport' });
    expect((await agent.call('POST', '/v1/policy/trace', { ...query(80, 'api'), protocol: 'GRE' })).body).toMatchObject({ path: 'protocol' });
    expect((await agent.call('POST', '/v1/policy/trace', { ...query(80, 'api'), src: { labels: { app: 'api' } } })).body).toMatchObject({ path: 'src.labels.app' });
    expect((await agent.call('POST', '/v1/policy/trace', { ...query(80, 'api'), dst: 'web' })).body).toMatchObject({ path: 'dst', error: 'expected { "labels": { "source:key": "value", ... } }' });
  });

  it('persists API imports across a restart, and deletes from the file too', async () => {
    let agent = await startAgent();
    await agent.call('POST', '/v1/policy', { documents: [cnp('a', 'x', allowFrom('api', '80')), cnp('b', 'x', allowFrom('api', '81'))] });
    await agent.call('POST', '/v1/policy', { documents: [cnp('a', 'x', allowFrom('api', '8080'))] });
    await agent.call('DELETE', '/v1/policy', undefined, { name: 'b', kind: 'CiliumNetworkPolicy' });
    await stop(agent);

    agent = await startAgent();
    expect(ruleNames(agent)).toEqual(['CiliumNetworkPolicy/x/a']);
    const trace = (dport: number) => agent.call('POST', '/v1/policy/trace', { src: { labels: { 'k8s:app': 'api', 'k8s:io.kubernetes.pod.namespace': 'x' } }, dst: { labels: web.labels }, dport, protocol: 'TCP' });
    // The updated version came back, not the first one.
    expect((await trace(8080)).body).toMatchObject({ verdict: 'allowed' });
    expect((await trace(80)).body).toMatchObject({ verdict: 'denied' });
    await agent.call('DELETE', '/v1/policy', undefined, { all: 'true' });
    await stop(agent);

    agent = await startAgent();
    expect(ruleNames(agent)).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'state', 'policies.json'), 'utf8'))).toEqual({ version: 1, documents: [] });
  });

  it('starts with an unreadable state file, says so in status, and keeps it aside', async () => {
    mkdirSync(join(dir, 'state'), { recursive: true });
    writeFileSync(join(dir, 'state', 'policies.json'), '{ torn');
    const agent = await startAgent();
    expect(agent.problems()).toEqual([expect.stringMatching(/^@cilia\/policy: persisted policies not restored: .*policies\.json: .*moved to .*policies\.json\.unreadable-\d+$/)]);
    expect((await agent.call('POST', '/v1/policy', { documents: [cnp('a', 'x', allowFrom('api', '80'))] })).status).toBe(200);
  });

  it('restores the persisted policies still valid and names the one refused', async () => {
    mkdirSync(join(dir, 'state'), { recursive: true });
    const refused = cnp('old', 'x', { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '99999' }] }] }] });
    writeFileSync(join(dir, 'state', 'policies.json'), JSON.stringify({ version: 1, documents: [cnp('kept', 'x', allowPort('80')), refused] }));
    const agent = await startAgent();
    expect(ruleNames(agent)).toEqual(['CiliumNetworkPolicy/x/kept']);
    expect(agent.problems()).toEqual([expect.stringMatching(/^@cilia\/policy: persisted policy CiliumNetworkPolicy\/x\/old refused: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: .+; it is not enforced$/)]);
    // One policy refused: one import error (cilia_policy_import_errors_total), not one more for the batch.
    expect((agent.host.resolver().get(Tokens.PolicyRepository) as unknown as { importErrors: number }).importErrors).toBe(1);
  });

  it('follows policies in the manifest directory: there at start, added, updated, refused, deleted', async () => {
    writeFileSync(join(manifests, 'ns.yaml'), stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }));
    writeFileSync(join(manifests, 'a.yaml'), stringify(cnp('from-dir', 'x', allowPort('80'))));
    const agent = await startAgent();
    const repo = agent.host.resolver().get(Tokens.PolicyRepository);
    // Listed before start resolved: an endpoint adopted right after sees it.
    expect(ruleNames(agent)).toEqual(['CiliumNetworkPolicy/x/from-dir']);

    writeFileSync(join(manifests, 'b.yaml'), stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'x' }, spec: { podSelector: {} } }));
    await until('the added NetworkPolicy', () => ruleNames(agent).includes('NetworkPolicy/x/np'));

    writeFileSync(join(manifests, 'a.yaml'), stringify(cnp('from-dir', 'x', allowPort('443'))));
    await until('the updated policy', () => repo.rules().find((r) => r.name === 'from-dir' && r.revision > 1));
    const entries = () => repo.resolve(web).entries.map(([k]) => k.port);
    expect(entries()).toContain(443);
    expect(entries()).not.toContain(80);

    const revision = repo.revision();
    writeFileSync(join(manifests, 'a.yaml'), stringify(cnp('from-dir', 'x', { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ toPorts: [{ ports: [{ port: 'not a port!' }] }] }] })));
    const problem = await until('the refused manifest in status', () => agent.problems().find((p) => p.includes('from-dir')));
    expect(problem).toMatch(/^@cilia\/policy: CiliumNetworkPolicy x\/from-dir from manifests:\S+ refused: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: .+; nothing changed because of it$/);
    // Nothing else changed: the last valid version still applies.
    expect(repo.revision()).toBe(revision);
    expect(entries()).toContain(443);

    rmSync(join(manifests, 'a.yaml'));
    await until('the deleted policy', () => !ruleNames(agent).includes('CiliumNetworkPolicy/x/from-dir'));
    expect(agent.problems()).toEqual([]);
    expect(ruleNames(agent)).toEqual(['NetworkPolicy/x/np']);
    // Manifest policies are not copied into the API state file: the directory is their source.
    expect(() => readFileSync(join(dir, 'state', 'policies.json'), 'utf8')).toThrow(/ENOENT/);
  });

  it("publishes CIDR peers' identities into the ipcache, those restored at start included, and withdraws them", async () => {
    const first = await startAgent();
    const egress = cnp('to-net', 'x', { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] }] });
    await first.call('POST', '/v1/policy', { documents: [egress] });
    await until('the CIDR entries', () => first.ipcache.entries.size === 2);
    await stop(first);

    // Restored while policy starts, before the ipcache's provider has: there all the same.
    const agent = await startAgent();
    expect([...agent.ipcache.entries.keys()].sort()).toEqual(['192.0.2.0/24', '192.0.2.128/25']);
    const entry = agent.ipcache.entries.get('192.0.2.0/24')!;
    expect(entry).toMatchObject({ source: 'generated' });
    expect(entry.identity).toBeGreaterThan(1 << 24);
    await agent.call('DELETE', '/v1/policy', undefined, { name: 'to-net' });
    await until('the CIDR entries withdrawn', () => agent.ipcache.entries.size === 0);
  });

  it('takes the enforcement mode from its config', async () => {
    const agent = await startAgent({ enforcement: 'always' });
    const repo = agent.host.resolver().get(Tokens.PolicyRepository);
    expect(repo.enforcementMode).toBe('always');
    expect(repo.resolve(web).enforcement).toEqual({ ingress: true, egress: true });
    expect((await agent.call('GET', '/v1/policy')).body).toMatchObject({ enforcement: 'always', rules: [] });
    expect(policyConfig.safeParse({ enforcement: 'sometimes' }).error?.issues[0]?.path).toEqual(['enforcement']);
    expect(policyConfig.safeParse({ allowLocalHost: true }).success).toBe(false);
  });
});
