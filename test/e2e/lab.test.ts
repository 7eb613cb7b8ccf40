// The multi-node lab, for real: `up --nodes 3` gives three agents in three node namespaces
// sharing one etcd; `down` removes every namespace, pin, directory and process it made, also
// after the lab's processes were killed with SIGKILL. A prefix of its own keeps this test apart
// from a user's lab (and from other runs).
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint, IpCacheEntry } from '@cilia/core';
import { api, REPO } from '../support/agent.js';

const PREFIX = `l${randomBytes(3).toString('hex')}`;
const K8S_NS = `lab${PREFIX}`;
const LAB = join(REPO, 'tools/lab/lab.mjs');
const CLI = join(REPO, 'node_modules/.bin/cilia');
const STATE_DIR = `/var/run/cilia-lab/${PREFIX}`;
const node = (k: number) => `${PREFIX}-${k}`;
const socket = (k: number) => `/var/run/cilia/${node(k)}/cilia.sock`;
const run = promisify(execFile);

const lab = async (...args: string[]) => {
  try {
    const r = await run(process.execPath, [LAB, ...args, '--prefix', PREFIX], { encoding: 'utf8', timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
};

const labNetns = () =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${PREFIX}-`) || n.startsWith(`cilia_${K8S_NS}_`));

/** Pids whose command line mentions the lab's state dir (its agents and etcd). */
const labPids = () =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${STATE_DIR}/`);
      } catch {
        return false;
      }
    })
    .map(Number);

function expectNothingLeft(): void {
  expect(labNetns()).toEqual([]);
  expect(labPids()).toEqual([]);
  expect(existsSync(STATE_DIR)).toBe(false);
  for (const k of [1, 2, 3]) {
    expect(existsSync(`/sys/fs/bpf/cilia-lab/${node(k)}`)).toBe(false);
    expect(existsSync(`/var/run/cilia/${node(k)}`)).toBe(false);
  }
}

describe('the multi-node lab', () => {
  afterAll(async () => {
    await lab('down');
  }, 60_000);

  it('brings up 3 nodes that all see each other and share the ipcache through etcd', async () => {
    const up = await lab('up', '--nodes', '3');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain(`agent ${node(3)}: sees all 3 nodes`);
    expect(labNetns().sort()).toEqual([node(1), node(2), node(3), `${PREFIX}-underlay`]);
    for (const k of [1, 2, 3]) {
      const r = spawnSync(CLI, ['--node', node(k), 'node', 'list', '-o', 'json'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const nodes = JSON.parse(r.stdout) as { name: string; ipv4: string; podCidrs: string[]; local: boolean }[];
      expect(nodes.map((n) => n.name)).toEqual([node(1), node(2), node(3)]);
      expect(nodes.find((n) => n.local)).toMatchObject({ name: node(k), ipv4: `172.30.0.${k}`, podCidrs: [`10.200.${k}.0/24`] });
    }
    const created = await api<Endpoint>(socket(1), 'POST', '/v1/endpoints', { name: 'web-0', namespace: K8S_NS, labels: { 'k8s:app': 'web' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.ipv4?.startsWith('10.200.1.')).toBe(true);
    const prefix = `${created.body.ipv4}/32`;
    await expect
      .poll(async () => (await api<IpCacheEntry[]>(socket(3), 'GET', '/v1/ipcache')).body.find((e) => e.prefix === prefix), { timeout: 10_000 })
      .toMatchObject({ prefix, identity: created.body.identity, tunnelEndpoint: '172.30.0.1', node: node(1), source: 'kvstore' });
    const status = await lab('status', '-o', 'json');
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { nodes: { health: string; seesNodes: number }[] }).nodes).toEqual(
      [1, 2, 3].map(() => expect.objectContaining({ health: 'ok', seesNodes: 3, running: true })),
    );
  }, 60_000);

  it('refuses a second up on the same prefix, naming the fix', async () => {
    const again = await lab('up', '--nodes', '1');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already exists.*down --prefix/);
  });

  it('removes everything on down (the pod netns too), and a second down is a no-op success', async () => {
    const down = await lab('down');
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expectNothingLeft();
    const again = await lab('down');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/removed|stopping/);
  }, 60_000);

  it('cleans up after a crash (agents and etcd killed with SIGKILL), pods included, and comes up again', async () => {
    const up = await lab('up', '--nodes', '3');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const pod = await api<Endpoint>(socket(2), 'POST', '/v1/endpoints', { name: 'crash-0', namespace: K8S_NS, labels: { 'k8s:app': 'db' } });
    expect(pod.status, JSON.stringify(pod.body)).toBe(201);
    expect(labNetns()).toContain(`cilia_${K8S_NS}_crash-0`);
    const pids = labPids();
    expect(pids.length).toBe(4);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await expect.poll(() => labPids(), { timeout: 5_000 }).toEqual([]);
    const down = await lab('down');
    expect(down.code, down.stdout + down.stderr).toBe(0);
    expectNothingLeft();
    const upAgain = await lab('up', '--nodes', '2');
    expect(upAgain.code, upAgain.stdout + upAgain.stderr).toBe(0);
    expect(upAgain.stdout).toContain(`agent ${node(2)}: sees all 2 nodes`);
  }, 60_000);

  it('tears down what it made when up fails midway, saying why', async () => {
    expect((await lab('down')).code).toBe(0);
    // A file where node 2's socket directory must go: up fails after node 1's agent started.
    mkdirSync('/var/run/cilia', { recursive: true });
    writeFileSync(`/var/run/cilia/${node(2)}`, '');
    const up = await lab('up', '--nodes', '2');
    expect(up.code).toBe(1);
    expect(up.stdout).toContain(`agent ${node(1)}: pid`);
    expect(up.stderr).toContain(`/var/run/cilia/${node(2)}`);
    expect(up.stdout).toMatch(/lab up failed: .*cleaning up/);
    expectNothingLeft();
  }, 60_000);

  it('rejects bad arguments with the flag and the reason', async () => {
    expect((await lab('up', '--nodes', 'x')).stderr).toMatch(/--nodes: must be a positive integer, got 'x'/);
    expect((await lab('up', '--nodes', '2', '--routing', 'ring')).stderr).toMatch(/--routing: unknown mode 'ring' \(one of none, vxlan, geneve, native\)/);
    expect((await lab('up', '--nodes', '2', '--set', 'bigTcp')).stderr).toMatch(/--set: expected KEY=VALUE with a dotted KEY .*got 'bigTcp'/);
    expect(labNetns()).toEqual([]);
    const bad = spawnSync(process.execPath, [LAB, 'down', '--prefix', 'Bad/x'], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--prefix: invalid 'Bad\/x'/);
  });
});
