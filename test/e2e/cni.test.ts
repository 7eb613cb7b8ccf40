import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Endpoint } from '@cilia/core';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { apiGet, REPO, startAgent, testPinRoot, type RunningAgent } from '../support/agent.js';

// cilia-cni driven as a runtime drives it (CNI_* environment, config on stdin, stdout and exit
// code read back) against the real agent: ADD, CHECK and DEL must leave no link, address,
// route, map entry or lease behind; CHECK notices a pod that lost its address; with the agent
// down, ADD fails with a CNI error saying so.

const CNI_DIR = join(REPO, 'apps/cni');
const tag = randomBytes(3).toString('hex');
// Unique per run: no clash with other tests' netns, devices or pod addresses on this host.
const POD_CIDR = `10.${60 + (parseInt(tag.slice(0, 2), 16) % 40)}.${parseInt(tag.slice(2, 4), 16)}.0/24`;
const EGRESS = `cnieg${tag}`;
const netnsNames: string[] = [];
let buildDir: string;
let bin: string;
let agent: RunningAgent | undefined;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipJson<T>(...args: string[]): T {
  return JSON.parse(ip('-j', ...args) || '[]') as T;
}

function newNetns(): string {
  const name = `cni-e2e-${tag}-${netnsNames.length}`;
  ip('netns', 'add', name);
  netnsNames.push(name);
  return name;
}

// Whether a pinned map (cilia_endpoints, cilia_ipcache) has a key for `ipv4`, read with bpftool
// (independent of the agent's own code). Both keys carry the address as `addr` (16 bytes).
function mapHasAddress(pin: string, ipv4: string): boolean {
  const out = execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', pin], { encoding: 'utf8' });
  const want = ipv4.split('.').map(Number);
  const entries = JSON.parse(out) as { key?: unknown; formatted?: { key?: { addr?: number[] } } }[];
  return entries.some((e) => {
    const addr = e.formatted?.key?.addr ?? (e.key as { addr?: number[] } | undefined)?.addr;
    return Array.isArray(addr) && want.every((b, i) => Number(addr[i]) === b);
  });
}

async function invoke(env: Record<string, string>, config: unknown) {
  const child = spawn(bin, [], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', CNI_PATH: '/opt/cni/bin', ...env } });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stdin.end(JSON.stringify(config));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, json: stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined };
}

function conf(socket: string, extra: Record<string, unknown> = {}) {
  return { cniVersion: '1.1.0', name: 'cilia', type: 'cilia-cni', socket, ...extra };
}

async function leases(a: RunningAgent): Promise<string[]> {
  try {
    const file = JSON.parse(await readFile(join(a.dir, 'state/ipam/leases.json'), 'utf8')) as { leases: { ip: string }[] };
    return file.leases.map((l) => l.ip);
  } catch {
    return [];
  }
}

beforeAll(async () => {
  // The real executable: the committed shim over a bundle of the current sources (as tsup builds it).
  await mkdir(join(CNI_DIR, 'node_modules/.cache'), { recursive: true });
  buildDir = await mkdtemp(join(CNI_DIR, 'node_modules/.cache/cilia-cni-e2e-'));
  await build({
    entryPoints: [join(CNI_DIR, 'src/main.ts')],
    outfile: join(buildDir, 'dist/main.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    conditions: ['@cilia/source'],
    logLevel: 'silent',
  });
  await mkdir(join(buildDir, 'bin'));
  bin = join(buildDir, 'bin/cilia-cni.js');
  await copyFile(join(CNI_DIR, 'bin/cilia-cni.js'), bin);
  // An egress device of our own (a veth pair: this kernel has no dummy driver), so the agent's
  // host programs touch nothing shared.
  ip('link', 'add', EGRESS, 'type', 'veth', 'peer', 'name', `cniep${tag}`);
  ip('addr', 'add', `198.18.${parseInt(tag.slice(0, 2), 16)}.${parseInt(tag.slice(2, 4), 16)}/32`, 'dev', EGRESS);
  ip('link', 'set', EGRESS, 'up');
}, 120_000);

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

afterAll(async () => {
  for (const name of netnsNames) {
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  }
  try {
    ip('link', 'del', EGRESS);
  } catch {
    // already gone
  }
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

async function start(): Promise<RunningAgent> {
  agent = await startAgent({ config: { ipam: { podCIDRs: [POD_CIDR] }, datapath: { egressDevice: EGRESS, masquerade: false } }, readyTimeoutMs: 30_000 });
  return agent;
}

describe('cilia-cni with the real agent', () => {
  it('ADD plumbs the pod, CHECK passes, DEL leaves no link, address, route, map entry or lease', async () => {
    const a = await start();
    const ns = newNetns();
    const netns = `/run/netns/${ns}`;
    const containerId = `e2e${tag}${randomBytes(8).toString('hex')}`;
    const env = { CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_ARGS: `K8S_POD_NAMESPACE=e2e;K8S_POD_NAME=pod-${tag}` };
    const pins = testPinRoot(a.dir);
    const config = conf(a.socket, { labels: { app: 'cni-e2e' } });

    const add = await invoke({ ...env, CNI_COMMAND: 'ADD' }, config);
    expect(add.stdout).toMatch(/^\{/);
    expect(add.code).toBe(0);
    const result = add.json as { interfaces: { name: string; mac: string; sandbox?: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: { dst: string; gw: string }[] };
    const [hostIf, podIf] = result.interfaces;
    const address = result.ips[0]!.address;
    const podIp = address.split('/')[0]!;
    expect(podIf).toMatchObject({ name: 'eth0', sandbox: netns });
    expect(hostIf!.sandbox).toBeUndefined();
    expect(result.ips[0]).toMatchObject({ interface: 1, address: expect.stringMatching(/\/32$/) });
    expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: result.ips[0]!.gateway }]);

    // The kernel agrees with the result: the interface in the netns has the address and MAC,
    // the default route goes via the gateway, the host side exists with a /32 route to the pod.
    const podAddrs = ipJson<{ ifname: string; address: string; addr_info: { local: string; prefixlen: number }[] }[]>('-n', ns, 'addr', 'show', 'dev', 'eth0');
    expect(podAddrs[0]?.address).toBe(podIf!.mac);
    expect(podAddrs[0]?.addr_info.map((i) => `${i.local}/${i.prefixlen}`)).toContain(address);
    expect(ipJson<{ dst: string; gateway?: string }[]>('-n', ns, 'route', 'show', 'default')).toEqual([expect.objectContaining({ dst: 'default', gateway: result.ips[0]!.gateway })]);
    expect(ipJson<{ ifname: string; address: string }[]>('link', 'show', 'dev', hostIf!.name)[0]?.address).toBe(hostIf!.mac);
    expect(ipJson<{ dst: string }[]>('route', 'show', `${podIp}/32`)).toHaveLength(1);
    const listed = (await apiGet<Endpoint[]>(a.socket, `/v1/endpoints?containerId=${containerId}&interfaceName=eth0`)).body;
    expect(listed).toEqual([expect.objectContaining({ name: `pod-${tag}`, namespace: 'e2e', ipv4: podIp, netns, hostInterface: hostIf!.name, labels: { app: 'cni-e2e' } })]);
    expect(await leases(a)).toContain(podIp);
    expect(mapHasAddress(join(pins, 'cilia_endpoints'), podIp)).toBe(true);
    expect(mapHasAddress(join(pins, 'cilia_ipcache'), podIp)).toBe(true);

    // ADD again (a retried runtime call): the same result, nothing new.
    const again = await invoke({ ...env, CNI_COMMAND: 'ADD' }, config);
    expect(again.json).toEqual(add.json);
    expect((await apiGet<Endpoint[]>(a.socket, '/v1/endpoints')).body).toHaveLength(1);

    const check = await invoke({ ...env, CNI_COMMAND: 'CHECK' }, { ...config, prevResult: add.json });
    expect(check).toMatchObject({ code: 0, stdout: '' });
    // CHECK looks at the kernel, not only at the agent's records.
    ip('-n', ns, 'addr', 'del', address, 'dev', 'eth0');
    const broken = await invoke({ ...env, CNI_COMMAND: 'CHECK' }, { ...config, prevResult: add.json });
    expect(broken.code).not.toBe(0);
    expect(broken.json).toMatchObject({ code: 103, msg: `CHECK failed: eth0 in ${netns} lacks the address ${address} (IPv4 addresses: none)` });
    ip('-n', ns, 'addr', 'add', address, 'dev', 'eth0');
    expect(await invoke({ ...env, CNI_COMMAND: 'CHECK' }, { ...config, prevResult: add.json })).toMatchObject({ code: 0, stdout: '' });

    const del = await invoke({ ...env, CNI_COMMAND: 'DEL' }, { ...config, prevResult: add.json });
    expect(del).toMatchObject({ code: 0, stdout: '' });
    expect(ipJson<unknown[]>('-n', ns, 'link', 'show')).toHaveLength(1); // lo only
    expect(ipJson<{ addr_info: unknown[] }[]>('-n', ns, 'addr', 'show').flatMap((l) => l.addr_info)).toEqual([]);
    expect(ipJson<unknown[]>('-n', ns, 'route', 'show')).toEqual([]);
    expect(ipJson<unknown[]>('-n', ns, 'neigh', 'show')).toEqual([]);
    expect(() => ip('link', 'show', 'dev', hostIf!.name)).toThrow();
    expect(ipJson<unknown[]>('route', 'show', `${podIp}/32`)).toEqual([]);
    expect((await apiGet<Endpoint[]>(a.socket, '/v1/endpoints')).body).toEqual([]);
    expect(await leases(a)).not.toContain(podIp);
    expect(mapHasAddress(join(pins, 'cilia_endpoints'), podIp)).toBe(false);
    expect(mapHasAddress(join(pins, 'cilia_ipcache'), podIp)).toBe(false);

    // DEL again: idempotent.
    expect(await invoke({ ...env, CNI_COMMAND: 'DEL' }, config)).toMatchObject({ code: 0, stdout: '' });
  });

  it('STATUS is ok and GC removes the attachments the runtime no longer lists', async () => {
    const a = await start();
    expect(await invoke({ CNI_COMMAND: 'STATUS' }, conf(a.socket))).toMatchObject({ code: 0, stdout: '' });
    const ids = [0, 1].map((i) => `gc${tag}${i}${randomBytes(6).toString('hex')}`);
    const hosts: string[] = [];
    for (const id of ids) {
      const ns = newNetns();
      const add = await invoke({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0' }, conf(a.socket));
      expect(add.code).toBe(0);
      hosts.push((add.json as { interfaces: { name: string }[] }).interfaces[0]!.name);
    }
    const gc = await invoke({ CNI_COMMAND: 'GC' }, conf(a.socket, { 'cni.dev/valid-attachments': [{ containerID: ids[0], ifname: 'eth0' }] }));
    expect(gc).toMatchObject({ code: 0, stdout: '' });
    expect((await apiGet<Endpoint[]>(a.socket, '/v1/endpoints')).body.map((e) => e.containerId)).toEqual([ids[0]]);
    expect(() => ip('link', 'show', 'dev', hosts[1]!)).toThrow();
    expect(await invoke({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: ids[0]!, CNI_IFNAME: 'eth0' }, conf(a.socket))).toMatchObject({ code: 0 });
    expect(() => ip('link', 'show', 'dev', hosts[0]!)).toThrow();
  });

  it('with the agent down, ADD fails with a CNI error that says so, and STATUS reports code 50', async () => {
    const a = await start();
    const socket = a.socket;
    await a.stop();
    agent = undefined;
    const ns = newNetns();
    const add = await invoke({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: `down${tag}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0' }, conf(socket));
    expect(add.code).not.toBe(0);
    expect(add.json).toMatchObject({ cniVersion: '1.1.0', code: 100, msg: expect.stringMatching(new RegExp(`^agent not reachable at ${socket.replace(/\./g, '\\.')}: `)) });
    expect(ipJson<unknown[]>('-n', ns, 'link', 'show')).toHaveLength(1);
    const status = await invoke({ CNI_COMMAND: 'STATUS' }, conf(socket));
    expect(status.json).toMatchObject({ code: 50, msg: expect.stringContaining(socket) });
  });
});
