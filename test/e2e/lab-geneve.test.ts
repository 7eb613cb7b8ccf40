// Pods across nodes over the Geneve overlay (plugins/overlay-geneve), on a 3-node lab
// (tools/lab, --routing geneve): every pod reaches every other over TCP, UDP and ICMP; the
// underlay carries frames tshark decodes as Geneve whose VNI is the source pod's identity; a
// policy letting only app=frontend reach app=backend holds across nodes (the identity crossed
// the wire); each node's own packets to remote pods are Geneve too (VNI 1, its host identity);
// a node that goes away takes its routes and tunnel entries with it.
// A random prefix keeps this lab apart from a user's lab and from other runs.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BpfMap } from '@cilia/bpf';
import type { Endpoint, IpCacheEntry } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, REPO } from '../support/agent.js';

const PREFIX = `g${randomBytes(3).toString('hex')}`;
const K8S_NS = `lg${PREFIX}`;
const LAB = join(REPO, 'tools/lab/lab.mjs');
const node = (k: number) => `${PREFIX}-${k}`;
const socket = (k: number) => `/var/run/cilia/${node(k)}/cilia.sock`;
const nodeIp = (k: number) => `172.30.0.${k}`;
const podCidr = (k: number) => `10.200.${k}.0/24`;
const pinRoot = (k: number) => `/sys/fs/bpf/cilia-lab/${node(k)}`;
const run = promisify(execFile);
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });

// `serve PORT`: echoes TCP and UDP on PORT. `tcp|udp HOST PORT`: one round trip, exit 0 when
// the echo came back, 1 after 1.5 s without it.
const PROBE = `const [mode,a,b]=process.argv.slice(1);
if(mode==='serve'){const p=+a;require('net').createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(p,()=>{const u=require('dgram').createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));u.bind(p,()=>console.log('ready'))})}
else{setTimeout(()=>process.exit(1),1500);if(mode==='tcp'){const s=require('net').connect(+b,a,()=>s.write('x'));s.on('data',()=>process.exit(0));s.on('error',()=>process.exit(1))}
else{const u=require('dgram').createSocket('udp4');u.on('message',()=>process.exit(0));u.send('x',+b,a)}}`;

const children: ChildProcess[] = [];

async function lab(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [LAB, ...args, '--prefix', PREFIX], { encoding: 'utf8', timeout: 240_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

/** Starts `node -e script args` in a pod namespace; resolves once it printed "ready". */
function startIn(netns: string, script: string, args: string[]): Promise<void> {
  const child = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => out.includes('ready') && (clearInterval(timer), resolve()), 20);
    child.on('close', (code) => {
      clearInterval(timer);
      reject(new Error(`server in ${netns} exited (${code}): ${out}`));
    });
  });
}

/** Which of TCP, UDP (port 8000) and ICMP get from `from` to `to` and back. */
function probe(from: Endpoint, to: Endpoint): { tcp: boolean; udp: boolean; icmp: boolean } {
  const inPod = (args: string[]) => tryRun('nsenter', [`--net=${from.netns}`, ...args]).status === 0;
  return {
    tcp: inPod([process.execPath, '-e', PROBE, 'tcp', to.ipv4!, '8000']),
    udp: inPod([process.execPath, '-e', PROBE, 'udp', to.ipv4!, '8000']),
    icmp: inPod(['ping', '-c', '1', '-W', '1', to.ipv4!]),
  };
}
const all = { tcp: true, udp: true, icmp: true };
const none = { tcp: false, udp: false, icmp: false };

/** Polls `probe` until it gives `expected` (the first packets may race the ipcache sync). */
async function expectReach(from: Endpoint, to: Endpoint, expected: typeof all): Promise<void> {
  await expect.poll(() => probe(from, to), { timeout: 30_000, interval: 500, message: `${from.name} → ${to.name}` }).toEqual(expected);
}

/**
 * tshark's reading of a capture of the underlay (UDP 6081 decodes as Geneve by default): the
 * VNIs seen per inner source address. Every frame must be Geneve on port 6081.
 */
function decodeCapture(file: string): Map<string, Set<number>> {
  const out = tryRun('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'geneve.vni', '-e', 'ip.src', '-e', 'udp.dstport']).stdout;
  const seen = new Map<string, Set<number>>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [vni, sources, dport] = line.split('|');
    expect(dport?.split(',')[0], line).toBe('6081');
    // Outer and inner source address, in that order.
    const inner = sources?.split(',')[1];
    expect(inner && vni, line).toBeTruthy();
    (seen.get(inner!) ?? seen.set(inner!, new Set()).get(inner!)!).add(Number(vni));
  }
  return seen;
}

/**
 * Captures Geneve on the underlay bridge while `traffic` runs, until packets from every inner
 * source in `sources` are in: the VNIs seen per inner source.
 */
async function captureGeneve(sources: readonly string[], traffic: () => void): Promise<Map<string, Set<number>>> {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-lab-geneve-'));
  const file = join(dir, 'underlay.pcap');
  // Immediate mode: tcpdump takes each packet as it comes (buffered, it may sit on them).
  const capture = spawn('ip', ['netns', 'exec', `${PREFIX}-underlay`, 'tcpdump', '-i', `${PREFIX}-br`, '--immediate-mode', '-U', '-w', file, 'udp', 'port', '6081'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(capture);
  const closed = new Promise((r) => capture.once('close', r));
  try {
    let err = '';
    capture.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await expect.poll(() => err, { timeout: 15_000 }).toContain('listening');
    traffic();
    // tcpdump writes each packet as it takes it: read the file until every source's are there.
    await expect.poll(() => sources.filter((ip) => decodeCapture(file).has(ip)).length, { timeout: 15_000, message: err }).toBe(sources.length);
    capture.kill('SIGINT');
    await closed;
    return decodeCapture(file);
  } finally {
    capture.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: K8S_NS }, spec });

describe('Geneve overlay on a 3-node lab', () => {
  /** Pods by node: frontend on 1, backend on 2, other on 3. */
  const pods = new Map<number, Endpoint>();
  const podOn = (k: number) => pods.get(k)!;

  beforeAll(async () => {
    const up = await lab('up', '--nodes', '3', '--routing', 'geneve');
    if (up.code !== 0) throw new Error(`lab up failed: ${up.out}`);
    for (const [k, app] of [[1, 'frontend'], [2, 'backend'], [3, 'other']] as const) {
      const r = await api<Endpoint>(socket(k), 'POST', '/v1/endpoints', { name: app, namespace: K8S_NS, labels: { app } });
      expect(r.status, `${app} on ${node(k)}: ${JSON.stringify(r.body)}`).toBe(201);
      pods.set(k, r.body);
      await startIn(r.body.netns, PROBE, ['serve', '8000']);
    }
  }, 300_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    const down = await lab('down');
    if (down.code !== 0) throw new Error(`lab down failed: ${down.out}`);
  }, 120_000);

  it('every pod reaches every other pod over TCP, UDP and ICMP, with the overlay MTU', async () => {
    for (const from of [1, 2, 3]) {
      for (const to of [1, 2, 3]) if (from !== to) await expectReach(podOn(from), podOn(to), all);
    }
    const link = tryRun('nsenter', [`--net=${podOn(1).netns}`, 'ip', '-j', 'link', 'show', 'eth0']);
    expect((JSON.parse(link.stdout) as Array<{ mtu: number }>)[0]?.mtu).toBe(1500 - 50);
  }, 240_000);

  it('the underlay carries Geneve that tshark decodes, with the source pod identity as VNI', async () => {
    const pods = [1, 2, 3].map(podOn);
    // Each pod pings the next: every pod sends a request and a reply through the tunnel.
    const seen = await captureGeneve(pods.map((p) => p.ipv4!), () => {
      for (const [from, to] of [[1, 2], [2, 3], [3, 1]] as const) expect(probe(podOn(from), podOn(to)).icmp).toBe(true);
    });
    for (const p of pods) expect([...seen.get(p.ipv4!)!], `VNIs of ${p.name}'s packets`).toEqual([p.identity]);
  }, 120_000);

  it('each node reaches the pods of the others through the tunnel too, with its host identity (1) as VNI', async () => {
    const nodeIps = [1, 2, 3].map(nodeIp);
    const seen = await captureGeneve(nodeIps, () => {
      for (const k of [1, 2, 3]) {
        for (const to of [1, 2, 3].filter((j) => j !== k)) expect(tryRun('ip', ['netns', 'exec', node(k), 'ping', '-c', '1', '-W', '2', podOn(to).ipv4!]).status, `${node(k)} → ${podOn(to).name}`).toBe(0);
      }
    });
    for (const ip of nodeIps) expect([...seen.get(ip)!], `VNIs of ${ip}'s packets`).toEqual([1]);
  }, 120_000);

  it('a policy letting only app=frontend reach app=backend holds across nodes', async () => {
    const policy = cnp('backend-from-frontend', { endpointSelector: { matchLabels: { app: 'backend' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'frontend' } }] }] });
    for (const k of [1, 2, 3]) {
      const r = await api<{ revision: number }>(socket(k), 'POST', '/v1/policy', { documents: [policy] });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await expectReach(podOn(3), podOn(2), none);
    await expectReach(podOn(1), podOn(2), all);
    // Only backend's ingress is selected: other pods still reach each other and the frontend.
    await expectReach(podOn(3), podOn(1), all);
  }, 180_000);

  it('a node that leaves takes its routes and tunnel entries off the others', async () => {
    const tunnelEntries = (k: number) => {
      const map = BpfMap.openPinned(join(pinRoot(k), 'cilia_ipcache'), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
      try {
        return [...map.entries()].filter(([, v]) => v.tunnelEndpoint === nodeIp(3)).map(([key]) => key);
      } finally {
        map.close();
      }
    };
    const routes = (k: number) => tryRun('ip', ['-n', node(k), 'route', 'show', podCidr(3)]).stdout.trim();
    for (const k of [1, 2]) {
      expect(routes(k)).toContain(`via ${nodeIp(3)}`);
      expect(tunnelEntries(k)).toContain(`${podOn(3).ipv4}/32`);
    }
    const down = await lab('node-down', '--node', '3');
    expect(down.code, down.out).toBe(0);
    for (const k of [1, 2]) {
      await expect.poll(() => routes(k), { timeout: 60_000, interval: 500 }).toBe('');
      await expect.poll(() => tunnelEntries(k), { timeout: 60_000, interval: 500 }).toEqual([]);
      const ipcache = await api<IpCacheEntry[]>(socket(k), 'GET', '/v1/ipcache');
      expect(ipcache.body.filter((e) => e.node === node(3))).toEqual([]);
    }
    // The others still reach each other.
    await expectReach(podOn(1), podOn(2), all);
  }, 180_000);
});
