// Identities on a 3-node lab (tools/lab), for real: 500 endpoints with overlapping label sets
// created concurrently across three agents sharing one etcd get consistent identities; an etcd
// outage (SIGKILL) leaves the agents running and forwarding, and reconciles when etcd is back;
// an agent killed with SIGKILL and restarted keeps its identities and ipcache entries.
// A random prefix keeps this lab apart from a user's lab and from other runs.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint, Identity, IpCacheEntry } from '@cilia/core';
import { AGENT_MAIN, api, REPO } from '../support/agent.js';

const PREFIX = `i${randomBytes(3).toString('hex')}`;
const K8S_NS = `labid${PREFIX}`;
const LAB = join(REPO, 'tools/lab/lab.mjs');
const CLI = join(REPO, 'node_modules/.bin/cilia');
const STATE_DIR = `/var/run/cilia-lab/${PREFIX}`;
const STATE_FILE = join(STATE_DIR, 'lab.json');
const ETCD_CLIENT = 'http://172.30.0.254:2379';
const ETCD_PEER = 'http://172.30.0.254:2380';
const NODES = [1, 2, 3] as const;
const node = (k: number) => `${PREFIX}-${k}`;
const socket = (k: number) => `/var/run/cilia/${node(k)}/cilia.sock`;
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LabState {
  pids: Record<string, number>;
}
const readState = () => JSON.parse(readFileSync(STATE_FILE, 'utf8')) as LabState;
/** Records a restarted process in the state file, so `down` stops it like the ones `up` started. */
function recordPid(key: string, pid: number): void {
  const state = readState();
  state.pids[key] = pid;
  writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function sigkill(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  while (alive(pid)) await sleep(20);
}
/** Starts `cmd` in netns `ns` detached, output appended to `log`, as tools/lab/lab-core.mjs does. */
function spawnInNetns(ns: string, cmd: string, args: string[], log: string): number {
  const fd = openSync(log, 'a');
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child.pid!;
}

const lab = async (...args: string[]) => {
  try {
    const r = await run(process.execPath, [LAB, ...args, '--prefix', PREFIX], { encoding: 'utf8', timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
};

async function identities(k: number): Promise<Identity[]> {
  const r = await run(CLI, ['--node', node(k), 'identity', 'list', '-o', 'json'], { encoding: 'utf8' });
  return JSON.parse(r.stdout) as Identity[];
}
const labelKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());
/** Cluster identities as sorted `id labels` lines. */
const clusterLines = (list: Identity[]) =>
  list
    .filter((x) => x.scope === 'cluster')
    .map((x) => `${x.id} ${labelKey(x.labels)}`)
    .sort();
function expectNoDuplicateLabelSets(list: Identity[], where: string): void {
  const keys = list.filter((x) => x.scope === 'cluster').map((x) => labelKey(x.labels));
  expect(new Set(keys).size, `duplicate label sets on ${where}`).toBe(keys.length);
}

async function create(k: number, name: string, labels: Record<string, string>): Promise<Endpoint> {
  const r = await api<Endpoint>(socket(k), 'POST', '/v1/endpoints', { name, namespace: K8S_NS, labels });
  expect(r.status, `${name} on ${node(k)}: ${JSON.stringify(r.body)}`).toBe(201);
  return r.body;
}

/** Runs `jobs` with at most `limit` in flight. */
async function bounded<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

const ping = (from: Endpoint, to: Endpoint) =>
  spawnSync('nsenter', [`--net=${from.netns}`, 'ping', '-c', '1', '-W', '1', to.ipv4!], { encoding: 'utf8' });

const APPS = ['web', 'db', 'cache', 'queue', 'auth'];
const TIERS = ['front', 'back', 'batch', 'edge', 'core'];
const COUNT = 500;
const PER_NODE_IN_FLIGHT = 16;

describe('identities on a 3-node lab', () => {
  /** Endpoints by node (1..3). */
  const made = new Map<number, Endpoint[]>(NODES.map((k) => [k, []]));

  beforeAll(async () => {
    const up = await lab('up', '--nodes', '3');
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stdout}${up.stderr}`);
  }, 60_000);

  afterAll(async () => {
    const down = await lab('down');
    if (down.code !== 0) console.error(`lab down failed: ${down.stdout}${down.stderr}`);
  }, 90_000);

  it('gives 500 endpoints created concurrently across three agents consistent identities', async () => {
    const t0 = Date.now();
    const perNode = NODES.map((k) => {
      const jobs: (() => Promise<void>)[] = [];
      for (let i = k - 1; i < COUNT; i += NODES.length) {
        const set = i % 25;
        // Churny labels differ per endpoint and must not mint identities.
        const labels = {
          'k8s:app': APPS[set % 5]!,
          'k8s:tier': TIERS[Math.floor(set / 5)]!,
          'k8s:pod-template-hash': randomBytes(4).toString('hex'),
          'k8s:controller-revision-hash': `r${i}`,
        };
        jobs.push(async () => void made.get(k)!.push(await create(k, `e${i}`, labels)));
      }
      return bounded(jobs, PER_NODE_IN_FLIGHT);
    });
    await Promise.all(perNode);
    const all = [...made.values()].flat();
    expect(all).toHaveLength(COUNT);
    console.log(`created ${COUNT} endpoints across 3 nodes in ${Date.now() - t0} ms`);

    const idsBySet = new Map<string, Set<number>>();
    for (const e of all) {
      const key = `${e.labels['k8s:app']}/${e.labels['k8s:tier']}`;
      idsBySet.set(key, (idsBySet.get(key) ?? new Set()).add(e.identity));
    }
    expect(idsBySet.size).toBe(25);
    for (const [set, ids] of idsBySet) expect([...ids], `label set ${set}`).toHaveLength(1);
    const ids = [...idsBySet.values()].map((s) => [...s][0]!);
    expect(new Set(ids).size, 'different label sets, different ids').toBe(25);
    expect(ids.every((id) => id >= 256 && id <= 65535)).toBe(true);

    // Every agent lists the same cluster identities, each label set once, churny labels dropped.
    await expect.poll(async () => clusterLines(await identities(2)), { timeout: 10_000 }).toEqual(clusterLines(await identities(1)));
    await expect.poll(async () => clusterLines(await identities(3)), { timeout: 10_000 }).toEqual(clusterLines(await identities(1)));
    for (const k of NODES) {
      const list = await identities(k);
      expectNoDuplicateLabelSets(list, node(k));
      const ours = list.filter((x) => ids.includes(x.id));
      expect(ours, `${node(k)} lists all 25 ids`).toHaveLength(25);
      for (const x of ours) expect(Object.keys(x.labels).some((l) => l.includes('hash'))).toBe(false);
    }
    const counts = NODES.map((k) => made.get(k)!.length).join('/');
    console.log(`consistency: ${COUNT} endpoints (${counts} per node) → 25 label sets → 25 distinct ids, identical on 3 nodes`);
  }, 60_000);

  it('keeps agents running and forwarding with etcd killed, and reconciles when etcd is back', async () => {
    const onNode1 = made.get(1)!;
    const [a, b] = [onNode1[0]!, onNode1[1]!];
    const before = ping(a, b);
    expect(before.status, `ping before the outage: ${before.stdout}${before.stderr}`).toBe(0);
    const identitiesBefore = await identities(1);

    const state = readState();
    const t0 = Date.now();
    await sigkill(state.pids.etcd!);
    const during = await create(2, 'during', { 'k8s:app': 'newcomer', 'k8s:tier': 'outage' });
    const createMs = Date.now() - t0;
    expect(during.state).toBe('ready');
    expect(during.identity).toBe(5);
    const meanwhile = ping(a, b);
    expect(meanwhile.status, `ping during the outage: ${meanwhile.stdout}${meanwhile.stderr}`).toBe(0);
    for (const k of NODES) expect(alive(state.pids[node(k)]!), `${node(k)} is running`).toBe(true);
    for (const k of NODES) {
      const s = await api<{ health: string }>(socket(k), 'GET', '/v1/status');
      expect(s.status).toBe(200);
    }

    // The same command tools/lab/lab-core.mjs starts etcd with, on the same data dir.
    const etcdPid = spawnInNetns(`${PREFIX}-underlay`, 'etcd', [
      '--name', 'lab', '--data-dir', join(STATE_DIR, 'etcd'),
      '--listen-client-urls', ETCD_CLIENT, '--advertise-client-urls', ETCD_CLIENT,
      '--listen-peer-urls', ETCD_PEER, '--initial-advertise-peer-urls', ETCD_PEER,
      '--initial-cluster', `lab=${ETCD_PEER}`, '--log-level', 'warn',
    ], join(STATE_DIR, 'etcd.log'));
    recordPid('etcd', etcdPid);
    const tBack = Date.now();
    await expect
      .poll(async () => (await api<Endpoint>(socket(2), 'GET', `/v1/endpoints/${during.id}`)).body.identity, { timeout: 30_000, interval: 250 })
      .toBeGreaterThanOrEqual(256);
    const reconcileMs = Date.now() - tBack;
    const settled = (await api<Endpoint>(socket(2), 'GET', `/v1/endpoints/${during.id}`)).body;
    expect(settled.state).toBe('ready');
    const other = await create(3, 'after', { 'k8s:app': 'newcomer', 'k8s:tier': 'outage', 'k8s:pod-template-hash': 'x1' });
    made.get(3)!.push(other);
    expect(other.identity).toBe(settled.identity);
    for (const k of NODES) {
      await expect.poll(async () => (await identities(k)).some((x) => x.id === settled.identity), { timeout: 10_000 }).toBe(true);
      const list = await identities(k);
      expectNoDuplicateLabelSets(list, node(k));
      // The 25 earlier identities survived the outage unchanged; exactly one was added.
      expect(clusterLines(list)).toEqual(expect.arrayContaining(clusterLines(identitiesBefore)));
      expect(list.filter((x) => x.scope === 'cluster')).toHaveLength(identitiesBefore.filter((x) => x.scope === 'cluster').length + 1);
    }
    console.log(`etcd outage: create during outage answered in ${createMs} ms with identity ${during.identity}; after restart the endpoint got ${settled.identity} in ${reconcileMs} ms`);
  }, 60_000);

  it('restores identities and ipcache entries of an agent killed with SIGKILL and restarted', async () => {
    const k = 3;
    const ours = new Set(made.get(k)!.map((e) => `${e.ipv4}/32`));
    const endpointsBefore = (await api<Endpoint[]>(socket(k), 'GET', '/v1/endpoints')).body.map((e) => [e.id, e.identity]).sort();
    const identitiesBefore = await Promise.all(NODES.map(async (n) => clusterLines(await identities(n))));
    const remoteOf = async (n: number) =>
      (await api<IpCacheEntry[]>(socket(n), 'GET', '/v1/ipcache')).body
        .filter((e) => ours.has(e.prefix))
        .map((e) => `${e.prefix} ${e.identity} ${e.node}`)
        .sort();
    const ipcacheBefore = await remoteOf(1);
    expect(ipcacheBefore).toHaveLength(ours.size);
    expect(ipcacheBefore.every((l) => l.endsWith(` ${node(k)}`))).toBe(true);

    const t0 = Date.now();
    await sigkill(readState().pids[node(k)]!);
    const dir = join(STATE_DIR, node(k));
    const pid = spawnInNetns(node(k), process.execPath, [AGENT_MAIN, '--config', join(dir, 'agent.yaml')], join(dir, 'agent.log'));
    recordPid(node(k), pid);
    await expect
      .poll(async () => (await api<{ health: string }>(socket(k), 'GET', '/v1/status').catch(() => undefined))?.body.health, { timeout: 30_000, interval: 200 })
      .toBe('ok');
    const restartMs = Date.now() - t0;

    const endpointsAfter = (await api<Endpoint[]>(socket(k), 'GET', '/v1/endpoints')).body.map((e) => [e.id, e.identity]).sort();
    expect(endpointsAfter).toEqual(endpointsBefore);
    for (const n of [1, 2]) await expect.poll(() => remoteOf(n), { timeout: 15_000 }).toEqual(ipcacheBefore);
    // The restarted agent's own ipcache holds its endpoints again (local entries name no node).
    const localOf = async () =>
      (await api<IpCacheEntry[]>(socket(k), 'GET', '/v1/ipcache')).body.filter((e) => ours.has(e.prefix)).map((e) => `${e.prefix} ${e.identity}`).sort();
    await expect.poll(localOf, { timeout: 15_000 }).toEqual(ipcacheBefore.map((l) => l.split(' ').slice(0, 2).join(' ')).sort());
    const identitiesAfter = await Promise.all(NODES.map(async (n) => clusterLines(await identities(n))));
    expect(identitiesAfter, 'no identity allocated or lost').toEqual(identitiesBefore);
    console.log(`agent restart: ${node(k)} healthy ${restartMs} ms after SIGKILL; ${endpointsAfter.length} endpoints and ${ipcacheBefore.length} ipcache entries restored, ${identitiesAfter[0]!.length} cluster identities unchanged`);
  }, 60_000);
});
