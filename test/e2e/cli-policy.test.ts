// `cilia policy ...` and `cilia endpoint get` against a running agent: the agent runs in a
// private "node" network namespace (nsenter --net; bpffs and /run/netns stay shared) with two
// endpoints, and every command goes through the real CLI binary and the agent's socket.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Endpoint, IpCacheEntry, PolicyRuleInfo } from '@cilia/core';
import { BpfMap } from '@cilia/bpf';
import { datapathMaps } from '@cilia/datapath';
import { AGENT_MAIN, REPO, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-clipol-${RUN}`;
const K8S_NS = `clipol${RUN}`;
const CLI = join(REPO, 'node_modules/.bin/cilia');

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

const cidrPolicy = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'to-net', namespace: K8S_NS },
  spec: { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] }] },
};

const POLICIES = `# a web server that only api may reach, on 80 (with HTTP rules, kept for the L7 proxy)
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-api, namespace: ${K8S_NS}}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: api}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}
---
apiVersion: v1
kind: List
items:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: api-egress, namespace: ${K8S_NS}}
    spec:
      podSelector: {matchLabels: {app: api}}
      policyTypes: [Egress]
      egress: [{ports: [{port: 80}]}]
`;

describe('cilia policy against a running agent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-clipol-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  const configFile = join(dir, 'agent.yaml');
  let agent: NetnsProcess | undefined;
  let web: Endpoint;
  let apiEp: Endpoint;

  // Asynchronous on purpose: this process also drains the agent's log pipe, and a synchronous
  // child would leave a large log line (an import of thousands of policies) blocking the agent.
  const cilia = (args: string[], input?: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(CLI, [...args, '--socket', socket], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input ?? '');
    });

  async function startAgent(): Promise<void> {
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    await waitHealthy(socket, agent);
  }

  async function stopAgent(): Promise<void> {
    if (!agent) return;
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
    await agent.done;
    agent = undefined;
  }

  beforeAll(async () => {
    sh('ip', ['netns', 'add', NODE_NS]);
    sh('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
    const agentSection = { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot, nodeName: `clipol-${RUN}` };
    writeFileSync(configFile, stringify({ agent: agentSection, ipam: { podCIDRs: ['10.244.41.0/24'] }, datapath: { masquerade: false }, manifests: { directory: join(dir, 'manifests') } }));
    await startAgent();
    const create = async (name: string, app: string) => {
      const r = await cilia(['endpoint', 'create', '--name', name, '--namespace', K8S_NS, '--labels', `k8s:app=${app}`, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Endpoint;
    };
    web = await create('web', 'web');
    apiEp = await create('api', 'api');
  }, 90_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports a multi-document file (a List unpacked), prints the revision, and -o json gives {"revision": N}', async () => {
    const file = join(dir, 'policies.yaml');
    writeFileSync(file, POLICIES);
    const r = await cilia(['policy', 'import', '-f', file]);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: 'Revision: 1\n' });
    const again = await cilia(['policy', 'import', '-f', '-', '-o', 'json'], POLICIES);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ revision: 2 });
  });

  it('refuses a bad document naming the file, the document, the field and the reason, and imports nothing', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, `${POLICIES}---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: broken, namespace: ${K8S_NS}}\nspec:\n  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: "99999"}]}]}]\n`);
    const r = await cilia(['policy', 'import', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^cilia: ${file}: document 3 \\(CiliumNetworkPolicy ${K8S_NS}/broken\\) spec\\.ingress\\[0\\]\\.toPorts\\[0\\]\\.ports\\[0\\]\\.port: .+; nothing was imported\\n$`));
    const listed = JSON.parse((await cilia(['policy', 'get', '-o', 'json'])).stdout) as { revision: number; rules: PolicyRuleInfo[] };
    expect(listed.revision).toBe(2);
    expect(listed.rules.map((p) => p.name).sort()).toEqual(['allow-api', 'api-egress']);
  });

  it('get lists policies as a table with the L7 note, and as JSON and YAML', async () => {
    const table = await cilia(['policy', 'get']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe('Revision: 2   Enforcement: default');
    expect(lines[2]!.split(/\s{2,}/)).toEqual(['KIND', 'NAMESPACE', 'NAME', 'REVISION', 'NOTES']);
    const row = lines.find((l) => l.includes('allow-api'))!.split(/\s{2,}/);
    expect(row.slice(0, 4)).toEqual(['CiliumNetworkPolicy', K8S_NS, 'allow-api', '2']);
    expect(row[4]).toContain('L7 rules are enforced at L4');
    const yaml = parse((await cilia(['policy', 'get', '-o', 'yaml'])).stdout) as { enforcement: string; rules: PolicyRuleInfo[] };
    expect(yaml.enforcement).toBe('default');
    expect(yaml.rules.find((p) => p.name === 'api-egress')).toMatchObject({ kind: 'NetworkPolicy', namespace: K8S_NS, revision: 2 });
  });

  it('wait returns once every endpoint realized the revision, and names the ones behind on timeout', async () => {
    const ok = await cilia(['policy', 'wait', '2', '--timeout', '30s']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim().split('\n').at(-1)).toBe('2/2 endpoints at revision ≥ 2');
    const late = await cilia(['policy', 'wait', '99', '--timeout', '600ms']);
    expect(late.code).toBe(1);
    expect(late.stdout).toContain('0/2 endpoints at revision ≥ 99');
    expect(late.stderr).toMatch(new RegExp(`^cilia: timed out after 600 ms: 2 endpoint\\(s\\) below revision 99: ${web.id} \\(${K8S_NS}/web\\) at \\d+, ${apiEp.id} \\(${K8S_NS}/api\\) at \\d+\\n$`));
  });

  it('trace explains allowed and denied by endpoint id or labels, exit 0 either way', async () => {
    const allowed = await cilia(['policy', 'trace', '--src', String(apiEp.id), '--dst', String(web.id), '--dport', '80/TCP']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/^Verdict: allowed\n/);
    expect(allowed.stdout).toMatch(/Ingress \(to --dst\): enforced, allowed, allowed by \S*allow-api/);
    expect(allowed.stdout).toMatch(/Egress \(from --src\): enforced, allowed, allowed by \S*api-egress/);

    const wrongPort = await cilia(['policy', 'trace', '--src', String(apiEp.id), '--dst', String(web.id), '--dport', '81']);
    expect(wrongPort.code, wrongPort.stderr).toBe(0);
    expect(wrongPort.stdout).toMatch(/^Verdict: denied\n/);

    const stranger = await cilia(['policy', 'trace', '--src', `app=other,io.kubernetes.pod.namespace=${K8S_NS}`, '--dst', `k8s:app=web,k8s:io.kubernetes.pod.namespace=${K8S_NS}`, '--dport', '80/tcp', '-o', 'json']);
    expect(stranger.code, stranger.stderr).toBe(0);
    expect(JSON.parse(stranger.stdout)).toMatchObject({ verdict: 'denied', ingress: { enforced: true, verdict: 'denied' }, egress: { enforced: false } });

    const unknown = await cilia(['policy', 'trace', '--src', '999', '--dst', String(web.id), '--dport', '80']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^cilia: endpoint 999 not found/);
    expect((await cilia(['policy', 'trace', '--src', '1', '--dst', '2', '--dport', 'http'])).code).toBe(2);
  });

  it('endpoint get shows the realized policy map', async () => {
    const r = await cilia(['endpoint', 'get', String(web.id)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Policy enforcement:\s+ingress enforce, egress allow-all/);
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/));
    expect(rows).toContainEqual(['DIRECTION', 'IDENTITY', 'PROTOCOL', 'PORT(S)', 'VERDICT']);
    expect(rows).toContainEqual(['ingress', String(apiEp.identity), 'TCP', '80', 'allow']);
    // Cilium's allow-localhost: the host reaches an endpoint whose ingress is enforced.
    expect(rows).toContainEqual(['ingress', '1', 'ANY', 'any', 'allow']);
  });

  it('policies imported through the CLI survive an agent restart', async () => {
    await stopAgent();
    await startAgent();
    const listed = JSON.parse((await cilia(['policy', 'get', '-o', 'json'])).stdout) as { rules: PolicyRuleInfo[] };
    expect(listed.rules.map((p) => p.name).sort()).toEqual(['allow-api', 'api-egress']);
  }, 60_000);

  it('delete by name (and namespace), refuses what matches nothing, and --all', async () => {
    const one = await cilia(['policy', 'delete', 'allow-api', '-n', K8S_NS]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(new RegExp(`^Deleted CiliumNetworkPolicy ${K8S_NS}/allow-api\\nRevision: \\d+\\n$`));
    const none = await cilia(['policy', 'delete', 'allow-api']);
    expect(none).toMatchObject({ code: 1, stderr: 'cilia: no policy matches "allow-api" (at name)\n' });
    expect((await cilia(['policy', 'delete'])).code).toBe(2);
    expect((await cilia(['policy', 'delete', 'x', '--all'])).code).toBe(2);
    const all = await cilia(['policy', 'delete', '--all', '-o', 'json']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ deleted: [{ kind: 'NetworkPolicy', namespace: K8S_NS, name: 'api-egress' }] });
    expect((await cilia(['policy', 'get'])).stdout).toMatch(/No policies\.\n$/);
  });

  it("puts a CIDR policy's prefixes in the ipcache map with local identities, keeps them across a restart, and removes them with the policy", async () => {
    const file = join(dir, 'cidr.yaml');
    writeFileSync(file, stringify(cidrPolicy));
    expect((await cilia(['policy', 'import', '-f', file])).code).toBe(0);
    const generated = async () => {
      const entries = JSON.parse((await cilia(['ipcache', 'list', '-o', 'json'])).stdout) as IpCacheEntry[];
      // Policy's entries: generated ones with a local (CIDR) identity; the datapath generates others (world, host).
      return entries.filter((e) => e.source === 'generated' && e.identity > 1 << 24).map((e) => [e.prefix, e.identity] as const).sort();
    };
    /** The identity of each prefix's own entry in the pinned LPM map (a lookup would fall back to 0.0.0.0/0). */
    const inMap = (prefixes: readonly string[]) => {
      const map = BpfMap.openPinned(join(bpfRoot, 'cilia_ipcache'), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
      try {
        const keys = new Set(map.keys());
        return prefixes.map((p) => (keys.has(p) ? map.lookup(p)?.identity : undefined));
      } finally {
        map.close();
      }
    };
    const before = await generated();
    expect(before.map(([p]) => p)).toEqual(['192.0.2.0/24', '192.0.2.128/25']);
    expect(inMap(['192.0.2.0/24', '192.0.2.128/25'])).toEqual(before.map(([, id]) => id));

    await stopAgent();
    await startAgent();
    // Restored into the ipcache before the datapath adopted its endpoints and pruned what no one
    // holds: the map kept the entries (nothing was pruned, so nothing was missing meanwhile).
    const after = await generated();
    expect(after.map(([p]) => p)).toEqual(['192.0.2.0/24', '192.0.2.128/25']);
    expect(inMap(['192.0.2.0/24', '192.0.2.128/25'])).toEqual(after.map(([, id]) => id));
    expect(agent!.output()).toContain('"msg":"endpoints adopted"');
    expect(agent!.output()).not.toContain('removed map entries no endpoint owns');

    expect((await cilia(['policy', 'delete', 'to-net'])).code).toBe(0);
    expect(await generated()).toEqual([]);
    expect(inMap(['192.0.2.0/24', '192.0.2.128/25'])).toEqual([undefined, undefined]);
  }, 60_000);

  it('imports a policy set beyond a megabyte in one request', async () => {
    const many = Array.from({ length: 4000 }, (_, i) => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: `bulk-${i}`, namespace: K8S_NS, labels: { purpose: 'a label long enough to make the whole set weigh more than a megabyte' } },
      spec: { endpointSelector: { matchLabels: { app: `nobody-${i}` } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: `peer-${i}` } }], toPorts: [{ ports: [{ port: String(1000 + (i % 5000)), protocol: 'TCP' }] }] }] },
    }));
    const text = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: many });
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const r = await cilia(['policy', 'import', '-f', '-', '-o', 'json'], text);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse((await cilia(['policy', 'get', '-o', 'json'])).stdout) as { rules: PolicyRuleInfo[] };
    expect(listed.rules).toHaveLength(4000);
    const gone = await cilia(['policy', 'delete', '--all']);
    expect(gone.code, gone.stderr).toBe(0);
  }, 120_000);
});
