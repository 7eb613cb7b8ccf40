// Two real agents sharing one real etcd (Debian's etcd) through @cilia/plugin-kvstore-etcd:
// each registers its node and sees the other; an endpoint on one reaches the other's ipcache
// with its node and tunnel endpoint; an agent stopped (SIGTERM: its lease revoked) leaves the
// other's node list and takes its ipcache entries with it.
// Each agent runs in its own "node" netns; the two are joined by a veth pair and etcd listens
// on node-1's side of it, so nothing touches the host's network.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint, IpCacheEntry } from '@cilia/core';
import { AGENT_MAIN, api, REPO, testPinRoot, spawnInNetns, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NETNS = [`cilia-e2e-nod1-${RUN}`, `cilia-e2e-nod2-${RUN}`] as const;
const NAMES = [`nod1-${RUN}`, `nod2-${RUN}`] as const;
const ADDRS = ['172.31.251.1', '172.31.251.2'] as const;
const POD_CIDRS = ['10.246.1.0/24', '10.246.2.0/24'] as const;
const K8S_NS = `nod${RUN}`;
const ETCD_CLIENT = `http://${ADDRS[0]}:23791`;
const ETCD_PEER = `http://${ADDRS[0]}:23801`;
const CLI = join(REPO, 'node_modules/.bin/cilia');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NodeItem {
  name: string;
  ipv4?: string;
  podCidrs: string[];
  tunnelEndpoint?: string;
  registeredAt: string;
  local: boolean;
}

// Node 2's cilia_ipcache entry for `ipv4`, read with bpftool (independent of the agent's own code).
function lpmEntry(pin: string, ipv4: string): { identity: number; tunnel_endpoint: number } | undefined {
  const out = execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', pin], { encoding: 'utf8' });
  const want = ipv4.split('.').map(Number);
  const entries = JSON.parse(out) as { formatted?: { key?: { prefixlen?: number; addr?: number[] }; value?: { identity: number; tunnel_endpoint: number } } }[];
  return entries.find((e) => e.formatted?.key?.prefixlen === 32 + 32 && want.every((b, i) => Number(e.formatted?.key?.addr?.[i]) === b))?.formatted?.value;
}

/** A `__be32` address as bpftool prints it: the bytes read as a little-endian number. */
const be32 = (ip: string) => ip.split('.').reduce((n, b, i) => n + Number(b) * 2 ** (8 * i), 0);

describe('node discovery and the shared ipcache across two agents sharing etcd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-nodes-e2e-'));
  const etcdData = join(dir, 'etcd');
  const agents = NETNS.map((_, i) => {
    const d = join(dir, `node${i + 1}`);
    return { dir: d, socket: join(d, 'cilia.sock'), config: join(d, 'agent.yaml'), bpfRoot: `${testPinRoot(dir)}-${i + 1}`, proc: undefined as NetnsProcess | undefined };
  });
  const procs: NetnsProcess[] = [];

  const cli = (i: number, args: string[]) => spawnSync(CLI, ['--socket', agents[i]!.socket, ...args], { encoding: 'utf8' });
  const nodes = async (i: number) => (await api<NodeItem[]>(agents[i]!.socket, 'GET', '/v1/nodes')).body;
  const ipcache = async (i: number) => (await api<IpCacheEntry[]>(agents[i]!.socket, 'GET', '/v1/ipcache')).body;

  async function startAgent(i: number): Promise<void> {
    const a = agents[i]!;
    a.proc = spawnInNetns(NETNS[i]!, process.execPath, [AGENT_MAIN, '--config', a.config]);
    procs.push(a.proc);
    const t0 = Date.now();
    for (;;) {
      if (a.proc.child.exitCode !== null) throw new Error(`agent ${i + 1} exited: ${a.proc.output()}`);
      const s = await api<AgentStatus>(a.socket, 'GET', '/v1/status').catch(() => undefined);
      if (s?.body.health === 'ok') return;
      if (Date.now() - t0 > 30_000) throw new Error(`agent ${i + 1} not ready: ${JSON.stringify(s?.body.problems)} ${a.proc.output()}`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    for (const ns of NETNS) sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', NETNS[0], 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext0', 'netns', NETNS[1]]);
    NETNS.forEach((ns, i) => {
      sh('ip', ['-n', ns, 'addr', 'add', `${ADDRS[i]}/24`, 'dev', 'ext0']);
      sh('ip', ['-n', ns, 'link', 'set', 'ext0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // The default route makes ext0 each node's egress device, so the node IP is found on its own.
      sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', ADDRS[1 - i]!]);
    });
    agents.forEach((a, i) => {
      mkdirSync(a.dir);
      writeFileSync(
        a.config,
        stringify({
          agent: { apiSocket: a.socket, stateDir: join(a.dir, 'state'), metricsAddress: '', bpfRoot: a.bpfRoot, nodeName: NAMES[i] },
          ipam: { podCIDRs: [POD_CIDRS[i]] },
          plugins: [join(REPO, 'plugins/kvstore-etcd')],
          'kvstore-etcd': { endpoints: [ETCD_CLIENT], dialTimeoutMs: 1000, retry: { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 500 } },
          nodes: { leaseTtlSeconds: 5 },
        }),
      );
    });
    const etcd = spawnInNetns(NETNS[0], 'etcd', [
      '--name', 'default', '--data-dir', etcdData,
      '--listen-client-urls', ETCD_CLIENT, '--advertise-client-urls', ETCD_CLIENT,
      '--listen-peer-urls', ETCD_PEER, '--initial-advertise-peer-urls', ETCD_PEER,
      '--initial-cluster', `default=${ETCD_PEER}`, '--log-level', 'warn',
    ]);
    procs.push(etcd);
    for (let t = 0; ; t++) {
      const r = tryRun('ip', ['netns', 'exec', NETNS[1], 'curl', '-s', '-m', '1', `${ETCD_CLIENT}/health`]);
      if (r.stdout.includes('"health":"true"')) break;
      if (etcd.child.exitCode !== null || t > 200) throw new Error(`etcd not healthy: ${etcd.output()}`);
      await sleep(100);
    }
    await Promise.all([startAgent(0), startAgent(1)]);
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.done));
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    for (const ns of NETNS) tryRun('ip', ['netns', 'delete', ns]);
    for (const a of agents) rmSync(a.bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  let endpoint: Endpoint;

  it('lists both nodes on each agent, with their addresses, pod CIDRs and tunnel endpoints', async () => {
    for (const i of [0, 1]) {
      await expect.poll(async () => (await nodes(i)).map((n) => n.name), { timeout: 10_000 }).toEqual([...NAMES]);
      const listed = await nodes(i);
      NAMES.forEach((name, j) => {
        expect(listed[j]).toMatchObject({ name, ipv4: ADDRS[j], tunnelEndpoint: ADDRS[j], podCidrs: [POD_CIDRS[j]], local: i === j });
      });
    }
    const json = cli(1, ['node', 'list', '-o', 'json']);
    expect(json.status, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as NodeItem[]).map((n) => n.name)).toEqual([...NAMES]);
    const table = cli(0, ['node', 'list']);
    expect(table.status, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+IPV4\s+POD-CIDRS\s+TUNNEL-ENDPOINT\s+AGE\s+LOCAL$/);
    expect(lines[1]).toMatch(new RegExp(`^${NAMES[0]}\\s+${ADDRS[0]}\\s+${POD_CIDRS[0]}\\s+${ADDRS[0]}\\s+\\d+[smh]\\S*\\s+yes$`));
    expect(lines[2], table.stdout).toMatch(new RegExp(`^${NAMES[1]}\\s+${ADDRS[1]}\\s+${POD_CIDRS[1]}\\s+${ADDRS[1]}\\s+\\d+[smh]\\S*\\s+no$`));
  });

  it("puts an endpoint created on node 1 into node 2's ipcache and LPM map with node 1's name and tunnel endpoint", async () => {
    // An endpoint on node 2 too, so node 2's datapath (and its LPM map) is loaded.
    const other = await api<Endpoint>(agents[1]!.socket, 'POST', '/v1/endpoints', { name: 'db-0', namespace: K8S_NS, labels: { 'k8s:app': 'db' } });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    const r = await api<Endpoint>(agents[0]!.socket, 'POST', '/v1/endpoints', { name: 'web-0', namespace: K8S_NS, labels: { 'k8s:app': 'web' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    endpoint = r.body;
    expect(endpoint.ipv4?.startsWith('10.246.1.')).toBe(true);
    const prefix = `${endpoint.ipv4}/32`;
    await expect
      .poll(async () => (await ipcache(1)).find((e) => e.prefix === prefix), { timeout: 10_000 })
      .toMatchObject({ prefix, identity: endpoint.identity, tunnelEndpoint: ADDRS[0], node: NAMES[0], source: 'kvstore' });
    await expect.poll(() => lpmEntry(join(agents[1]!.bpfRoot, 'cilia_ipcache'), endpoint.ipv4!), { timeout: 5_000 }).toEqual({
      identity: endpoint.identity,
      tunnel_endpoint: be32(ADDRS[0]),
      flags: 0,
      pad: 0,
    });
    // And the other way round.
    await expect.poll(async () => (await ipcache(0)).find((e) => e.prefix === `${other.body.ipv4}/32`), { timeout: 10_000 }).toMatchObject({ node: NAMES[1], tunnelEndpoint: ADDRS[1], source: 'kvstore' });
    // On its own node it is a local entry.
    expect((await ipcache(0)).find((e) => e.prefix === prefix)).toMatchObject({ identity: endpoint.identity, source: 'local' });
    const table = cli(1, ['ipcache', 'list']);
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^PREFIX\s+IDENTITY\s+TUNNEL-ENDPOINT\s+NODE\s+SOURCE$/);
    expect(table.stdout).toMatch(new RegExp(`^${prefix.replace(/\./g, '\\.')}\\s+${endpoint.identity}\\s+${ADDRS[0]}\\s+${NAMES[0]}\\s+kvstore$`, 'm'));
    const json = cli(1, ['ipcache', 'list', '-o', 'json']);
    expect(json.status, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as IpCacheEntry[]).some((e) => e.prefix === prefix && e.node === NAMES[0])).toBe(true);
  }, 30_000);

  it("takes node 1 out of node 2's node list and its entries out of node 2's ipcache when node 1's agent stops", async () => {
    const prefix = `${endpoint.ipv4}/32`;
    const a = agents[0]!;
    a.proc!.child.kill('SIGTERM');
    expect(await a.proc!.done).toBe(0);
    // The lease is revoked on the way out: no waiting for a TTL.
    await expect.poll(async () => (await nodes(1)).map((n) => n.name), { timeout: 4_000 }).toEqual([NAMES[1]]);
    await expect.poll(async () => (await ipcache(1)).some((e) => e.prefix === prefix), { timeout: 4_000 }).toBe(false);
    expect((await nodes(1))[0]).toMatchObject({ name: NAMES[1], local: true });
    expect(lpmEntry(join(agents[1]!.bpfRoot, 'cilia_ipcache'), endpoint.ipv4!)).toBeUndefined();
  }, 30_000);

  it('brings node 1 and its restored endpoint back when its agent restarts, and drops them when the lease expires after a SIGKILL', async () => {
    const prefix = `${endpoint.ipv4}/32`;
    await startAgent(0);
    await expect.poll(async () => (await nodes(1)).map((n) => n.name), { timeout: 10_000 }).toEqual([...NAMES]);
    await expect
      .poll(async () => (await ipcache(1)).find((e) => e.prefix === prefix), { timeout: 10_000 })
      .toMatchObject({ prefix, identity: endpoint.identity, tunnelEndpoint: ADDRS[0], node: NAMES[0], source: 'kvstore' });
    const a = agents[0]!;
    a.proc!.child.kill('SIGKILL');
    await a.proc!.done;
    // Nothing revokes the lease now: it expires (TTL 5 s) and etcd deletes the keys.
    await expect.poll(async () => (await nodes(1)).map((n) => n.name), { timeout: 15_000, interval: 250 }).toEqual([NAMES[1]]);
    await expect.poll(async () => (await ipcache(1)).some((e) => e.prefix === prefix), { timeout: 5_000 }).toBe(false);
  }, 60_000);
});
