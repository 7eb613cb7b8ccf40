// Two real agents sharing one real etcd (Debian's etcd-server) through @cilia/plugin-kvstore-etcd:
// consistent identities across nodes, an etcd outage (SIGKILL) and its end.
// Each agent runs in its own "node" netns; the two nodes are joined by a veth pair and etcd
// listens on node-1's side of it, so nothing touches the host's network.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint, Identity } from '@cilia/core';
import { AGENT_MAIN, api, REPO, testPinRoot, spawnInNetns, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODES = [`cilia-e2e-ide1-${RUN}`, `cilia-e2e-ide2-${RUN}`] as const;
const ADDRS = ['172.31.252.1', '172.31.252.2'] as const;
const K8S_NS = `ide${RUN}`;
const ETCD_CLIENT = `http://${ADDRS[0]}:23790`;
const ETCD_PEER = `http://${ADDRS[0]}:23800`;
const CLI = join(REPO, 'node_modules/.bin/cilia');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('identities across two agents sharing etcd', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-ide-e2e-'));
  const etcdData = join(dir, 'etcd');
  const agents = NODES.map((_, i) => {
    const d = join(dir, `node${i + 1}`);
    return { dir: d, socket: join(d, 'cilia.sock'), config: join(d, 'agent.yaml'), bpfRoot: `${testPinRoot(dir)}-${i + 1}`, proc: undefined as NetnsProcess | undefined };
  });
  let etcd: NetnsProcess | undefined;
  const procs: NetnsProcess[] = [];

  const cli = (i: number, args: string[]) => spawnSync(CLI, ['--socket', agents[i]!.socket, ...args], { encoding: 'utf8' });
  const identities = (i: number): Identity[] => {
    const r = cli(i, ['identity', 'list', '-o', 'json']);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Identity[];
  };
  async function create(i: number, name: string, labels: Record<string, string>): Promise<Endpoint> {
    const r = await api<Endpoint>(agents[i]!.socket, 'POST', '/v1/endpoints', { name, namespace: K8S_NS, labels });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  function startEtcd(): void {
    etcd = spawnInNetns(NODES[0], 'etcd', [
      '--name', 'default', '--data-dir', etcdData,
      '--listen-client-urls', ETCD_CLIENT, '--advertise-client-urls', ETCD_CLIENT,
      '--listen-peer-urls', ETCD_PEER, '--initial-advertise-peer-urls', ETCD_PEER,
      '--initial-cluster', `default=${ETCD_PEER}`, '--log-level', 'warn',
    ]);
    procs.push(etcd);
  }
  async function waitEtcd(): Promise<void> {
    for (let t = 0; t < 200; t++) {
      const r = tryRun('ip', ['netns', 'exec', NODES[1], 'curl', '-s', '-m', '1', `${ETCD_CLIENT}/health`]);
      if (r.stdout.includes('"health":"true"')) return;
      if (etcd!.child.exitCode !== null) throw new Error(`etcd exited: ${etcd!.output()}`);
      await sleep(100);
    }
    throw new Error(`etcd not healthy: ${etcd!.output()}`);
  }
  async function startAgent(i: number): Promise<void> {
    const a = agents[i]!;
    a.proc = spawnInNetns(NODES[i]!, process.execPath, [AGENT_MAIN, '--config', a.config]);
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
    for (const ns of NODES) sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', NODES[0], 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext0', 'netns', NODES[1]]);
    NODES.forEach((ns, i) => {
      sh('ip', ['-n', ns, 'addr', 'add', `${ADDRS[i]}/24`, 'dev', 'ext0']);
      sh('ip', ['-n', ns, 'link', 'set', 'ext0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', ADDRS[1 - i]!]);
    });
    agents.forEach((a, i) => {
      mkdirSync(a.dir);
      writeFileSync(
        a.config,
        stringify({
          agent: { apiSocket: a.socket, stateDir: join(a.dir, 'state'), metricsAddress: '', bpfRoot: a.bpfRoot, nodeName: `ide${i + 1}-${RUN}` },
          ipam: { podCIDRs: [`10.245.${i + 1}.0/24`] },
          plugins: [join(REPO, 'plugins/kvstore-etcd')],
          'kvstore-etcd': { endpoints: [ETCD_CLIENT], dialTimeoutMs: 1000, retry: { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 500 } },
          identity: { leaseTtlSeconds: 10 },
        }),
      );
    });
    startEtcd();
    await waitEtcd();
    await Promise.all([startAgent(0), startAgent(1)]);
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.done));
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    for (const ns of NODES) tryRun('ip', ['netns', 'delete', ns]);
    for (const a of agents) rmSync(a.bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const made: Endpoint[][] = [[], []];

  it('gives the same labels the same id on both nodes, concurrently, and different labels different ids', async () => {
    const apps = ['web', 'db', 'cache', 'queue'];
    const jobs: Promise<void>[] = [];
    for (let k = 0; k < 12; k++) {
      for (const i of [0, 1]) {
        jobs.push(create(i, `p${i}-${k}`, { 'k8s:app': apps[k % 4]!, 'k8s:pod-template-hash': `${i}${k}` }).then((e) => void made[i]!.push(e)));
      }
    }
    await Promise.all(jobs);
    const idOf = new Map<string, Set<number>>();
    for (const e of made.flat()) idOf.set(e.labels['k8s:app']!, (idOf.get(e.labels['k8s:app']!) ?? new Set()).add(e.identity));
    for (const [app, ids] of idOf) expect([...ids], app).toHaveLength(1);
    const ids = [...idOf.values()].map((s) => [...s][0]!);
    expect(new Set(ids).size).toBe(4);
    expect(ids.every((id) => id >= 256 && id <= 65535)).toBe(true);
    // Both agents list the same cluster identities.
    const cluster = (i: number) => identities(i).filter((x) => x.scope === 'cluster').map((x) => `${x.id} ${JSON.stringify(x.labels)}`).sort();
    await expect.poll(() => cluster(1), { timeout: 5000 }).toEqual(cluster(0));
    expect(cluster(0)).toHaveLength(4);
  });

  it('keeps running with etcd killed: a new endpoint gets init; etcd back, it gets its id, with no duplicate', async () => {
    etcd!.child.kill('SIGKILL');
    await etcd!.done;
    const during = await create(0, 'during', { 'k8s:app': 'newcomer' });
    expect(during.state).toBe('ready');
    expect(during.identity).toBe(5);
    // Known label sets are still answered from memory.
    const known = await create(1, 'known', { 'k8s:app': 'web' });
    expect(known.identity).toBe(made[0]!.find((e) => e.labels['k8s:app'] === 'web')!.identity);
    for (const a of agents) expect(a.proc!.child.exitCode).toBeNull();
    startEtcd();
    await waitEtcd();
    await expect.poll(async () => (await api<Endpoint>(agents[0]!.socket, 'GET', `/v1/endpoints/${during.id}`)).body.identity, { timeout: 30_000, interval: 250 }).toBeGreaterThanOrEqual(256);
    const settled = (await api<Endpoint>(agents[0]!.socket, 'GET', `/v1/endpoints/${during.id}`)).body.identity;
    const other = await create(1, 'after', { 'k8s:app': 'newcomer' });
    expect(other.identity).toBe(settled);
    for (const i of [0, 1]) {
      await expect.poll(() => identities(i).some((x) => x.id === settled), { timeout: 5000 }).toBe(true);
      const cluster = identities(i).filter((x) => x.scope === 'cluster');
      const keys = cluster.map((x) => JSON.stringify(Object.entries(x.labels).sort()));
      expect(new Set(keys).size, `duplicate label sets on agent ${i + 1}`).toBe(keys.length);
      expect(cluster).toHaveLength(5);
    }
  }, 60_000);

  it('restores the ids after an agent is SIGKILLed and restarted', async () => {
    const before = (await api<Endpoint[]>(agents[1]!.socket, 'GET', '/v1/endpoints')).body;
    agents[1]!.proc!.child.kill('SIGKILL');
    await agents[1]!.proc!.done;
    await startAgent(1);
    const after = (await api<Endpoint[]>(agents[1]!.socket, 'GET', '/v1/endpoints')).body;
    expect(after.map((e) => [e.id, e.identity])).toEqual(before.map((e) => [e.id, e.identity]));
    expect(identities(1).filter((x) => x.scope === 'cluster')).toHaveLength(5);
  }, 60_000);
});
