// The overlay as the agent runs it, on real links: the base datapath attached by libs/datapath's
// loader (BpfDatapath) on the underlay, a pod in a namespace of its own, and Geneve packets a
// neighbour namespace sends. The receive program lives in the base's from-netdev pre hook, so
// whichever comes first — the overlay or the base — the first tunnel packet after both are up
// reaches the pod. Also: the forward slot, routes towards other nodes and their removal, and the
// slots emptied when the plugin leaves. The object goes in as the agent installs it: the
// plugin's `bpf:` declaration, the constants `prepare` returns, `BpfDatapath.installObjects`.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { attachTc, BpfMap, BpfObject, codec, detachTc, ProgramArray, queryTc } from '@cilia/bpf';
import { compileBpf, makePinRoot, packet, removePinRoot, type TestLink, TestNetwork, workspaceRoot } from '@cilia/bpf/testing';
import type { LoadedBpfObject, NodeInfo } from '@cilia/core';
import { BpfDatapath, datapathConfig, datapathMaps as m, LocalIpCache } from '@cilia/datapath';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin, { GeneveEncapsulation, GENEVE_PROGRAMS } from './index.js';
import { geneveHeader } from './testing/geneve-frames.js';

const x = (process.pid % 200) + 20;
const LOCAL = `198.20.${x}.1`;
const PEER = `198.20.${x}.2`;
const POD = `10.225.${x}.10`;
const REMOTE_POD = `10.224.${x}.20`;
const REMOTE_POD_CIDR = `10.224.${x}.0/24`;
const POD_PORT = 7777;
const POD_IDENTITY = 7001;
/** This test's host device (the default name would collide with a running agent's). */
const HOST_DEVICE = `gnvh${process.pid % 100000}`;
const REMOTE_IDENTITY = 7002;

const net = new TestNetwork();
let objectDir: string;
let geneveObject: string;
let underlay: TestLink & { netns: string };
let pod: { netns: string; hostIfindex: number; hostMac: string; podIfindex: number; podMac: string };
let podReceiver: ChildProcess | undefined;
/** What reached the pod's socket, and what reached the node's own stack on the tunnel port. */
const atPod: string[] = [];
const atNode: string[] = [];
let nodeSink: Socket;
let tag = 0;

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent } as never;

/** The pod's side of its veth lives in its own namespace; the host side stays here. */
function plumbPod(): typeof pod {
  const netns = `gnvpod${process.pid}`;
  const link = net.link();
  execFileSync('ip', ['netns', 'add', netns]);
  execFileSync('ip', ['link', 'set', `${link.name}p`, 'netns', netns]);
  const inPod = (...args: string[]) => execFileSync('ip', ['-n', netns, ...args], { encoding: 'utf8' });
  inPod('link', 'set', `${link.name}p`, 'name', 'eth0');
  inPod('addr', 'add', `${POD}/32`, 'dev', 'eth0');
  inPod('link', 'set', 'eth0', 'up');
  inPod('link', 'set', 'lo', 'up');
  inPod('route', 'add', 'default', 'dev', 'eth0');
  const [info] = JSON.parse(inPod('-j', 'link', 'show', 'eth0')) as Array<{ ifindex: number; address: string }>;
  return { netns, hostIfindex: link.ifindex, hostMac: link.mac, podIfindex: info!.ifindex, podMac: info!.address };
}

/** A UDP socket on the pod's address, inside its namespace, reporting each datagram on a line. */
async function startPodReceiver(): Promise<void> {
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>console.log(m.toString()));s.bind(${POD_PORT},'${POD}',()=>console.log('ready'));`;
  podReceiver = spawn('ip', ['netns', 'exec', pod.netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: podReceiver.stdout! });
  await new Promise<void>((resolve, reject) => {
    podReceiver!.once('exit', (code) => reject(new Error(`pod receiver exited (${code})`)));
    lines.on('line', (line) => (line === 'ready' ? resolve() : atPod.push(line)));
  });
}

/** One Geneve packet from the neighbour node, carrying a UDP datagram from a remote pod to ours. */
function sendTunnelled(): string {
  const text = `geneve-${tag++}`;
  const inner = packet().eth({ src: '02:00:00:00:0f:01', dst: '02:00:00:00:0f:02' }).ipv4({ src: REMOTE_POD, dst: POD, ttl: 63 }).udp({ sport: 40000 + tag, dport: POD_PORT }).payload(text).build();
  const payload = Buffer.concat([geneveHeader({ vni: REMOTE_IDENTITY }), inner]).toString('hex');
  const script = `const s=require('dgram').createSocket('udp4');s.send(Buffer.from('${payload}','hex'),6081,'${LOCAL}',(e)=>{s.close();if(e)process.exit(1)});`;
  execFileSync('ip', ['netns', 'exec', underlay.netns, process.execPath, '-e', script], { stdio: 'ignore' });
  return text;
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends exactly one tunnel packet and waits for it where it must land (and only there). */
async function sendOnce(expected: 'pod' | 'node'): Promise<void> {
  const text = sendTunnelled();
  const [here, other] = expected === 'pod' ? [atPod, atNode] : [atNode, atPod];
  await until(`${text} at the ${expected}`, () => here.includes(text));
  expect(other).not.toContain(text);
}

function newDatapath(pinRoot: string): BpfDatapath {
  return new BpfDatapath({ pinRoot, config: datapathConfig.parse({}), ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objectDir}/`) });
}

/** The base on this node as the agent brings it up with its first endpoint: host.o on the underlay, the pod's entry. */
async function startBase(pinRoot: string): Promise<BpfDatapath> {
  const datapath = newDatapath(pinRoot);
  await datapath.ensureNode({ mtu: 1450, hostIPv4: [LOCAL], egress: { name: underlay.name, ifindex: underlay.ifindex, mac: underlay.mac, ipv4: LOCAL, mtu: 1500 } });
  await datapath.attachEndpoint({ id: 71, ipv4: POD, hostInterface: 'unused', hostIfindex: pod.hostIfindex, hostMac: pod.hostMac, podIfindex: pod.podIfindex, podMac: pod.podMac, identity: POD_IDENTITY });
  return datapath;
}

const SLOTS = { receive: m.slotIndex('from-netdev', 'pre'), forward: m.slotIndex('from-container', 'forward') };
const LOCAL_NODE: NodeInfo = { name: 'local', ipv4: LOCAL, podCidrs: [] };

interface Overlay {
  readonly encapsulation: GeneveEncapsulation;
  /** The plugin leaving the config: its slots emptied, its handles closed. */
  teardown(): Promise<void>;
}

/**
 * The overlay as the agent brings it up: devices and constants (`prepare`), the declared object
 * installed by a datapath (base loaded or not) into its slots, then `setup`.
 */
async function startOverlay(datapath: BpfDatapath): Promise<Overlay> {
  const installed: LoadedBpfObject[] = [];
  const encapsulation = new GeneveEncapsulation({ config: { port: 6081, device: underlay.name, hostDevice: HOST_DEVICE }, logger: silent, object: () => installed[0]! });
  const constants = await encapsulation.prepare(LOCAL_NODE);
  installed.push(...(await datapath.installObjects(plugin.name, [{ spec: { ...plugin.bpf![0]!, object: geneveObject }, constants }])));
  await encapsulation.setup(LOCAL_NODE);
  return {
    encapsulation,
    async teardown() {
      await datapath.releaseSlots([]);
      datapath.closeObjects(plugin.name);
      await encapsulation.close();
    },
  };
}

function slotTable<T>(pinRoot: string, fn: (slots: ProgramArray) => T): T {
  const map = BpfMap.openPinned(join(pinRoot, 'cilia_tc_slots'), { key: codec.u32, value: codec.u32 });
  try {
    return fn(new ProgramArray(map));
  } finally {
    map.close();
  }
}

beforeAll(async () => {
  try {
    objectDir = mkdtempSync(join(tmpdir(), 'cilia-geneve-objects-'));
    for (const name of ['lxc', 'host']) compileBpf(name, { srcDir: join(workspaceRoot(), 'bpf'), outDir: objectDir });
    geneveObject = compileBpf('overlay-geneve', { srcDir: new URL('../bpf/', import.meta.url), outDir: objectDir });
    underlay = net.linkToNetns(`${LOCAL}/24`, `${PEER}/24`);
    // No ARP between the two nodes: the first packet sent is the first packet on the wire.
    execFileSync('ip', ['-n', underlay.netns, 'neigh', 'replace', LOCAL, 'lladdr', underlay.mac, 'dev', 'eth0', 'nud', 'permanent']);
    pod = plumbPod();
    await startPodReceiver();
    nodeSink = createSocket('udp4');
    nodeSink.on('message', (msg) => atNode.push(msg.subarray(8 + 14 + 20 + 8).toString()));
    await new Promise<void>((resolve, reject) => {
      nodeSink.once('error', reject);
      nodeSink.bind(6081, LOCAL, () => resolve());
    });
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  nodeSink?.close();
  podReceiver?.kill();
  if (pod) execFileSync('ip', ['netns', 'del', pod.netns], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', HOST_DEVICE], { stdio: 'ignore' });
  net.remove();
  if (objectDir) rmSync(objectDir, { recursive: true, force: true });
}
afterAll(cleanup);

describe('the receive program in the from-netdev pre hook', () => {
  it('overlay first, base later: the first tunnel packet after the base attached reaches the pod', async () => {
    const pinRoot = makePinRoot('geneve-first');
    const installer = newDatapath(pinRoot);
    const generations: BpfDatapath[] = [];
    let overlay: Overlay | undefined;
    try {
      overlay = await startOverlay(installer);
      expect(overlay.encapsulation.underlay?.index).toBe(underlay.ifindex);
      // Nothing on the underlay yet: tunnel packets are the node's.
      await sendOnce('node');
      generations.push(await startBase(pinRoot));
      await sendOnce('pod');
      // A restarted agent re-attaches the base (atomic replace): still no gap.
      generations.push(await startBase(pinRoot));
      await sendOnce('pod');
      await sendOnce('pod');
    } finally {
      await overlay?.encapsulation.close();
      generations.at(-1)?.detachNode();
      for (const d of [installer, ...generations]) d.close();
      removePinRoot(pinRoot);
    }
  });

  it('base first, overlay later: the first tunnel packet after setup reaches the pod; leaving the config hands them back to the node', async () => {
    const pinRoot = makePinRoot('geneve-second');
    const datapath = await startBase(pinRoot);
    let overlay: Overlay | undefined;
    try {
      await sendOnce('node');
      overlay = await startOverlay(datapath);
      slotTable(pinRoot, (slots) => {
        expect(slots.get(SLOTS.receive)).toBeGreaterThan(0);
        expect(slots.get(SLOTS.forward)).toBeGreaterThan(0);
      });
      await sendOnce('pod');
      await overlay.teardown();
      slotTable(pinRoot, (slots) => {
        expect(slots.get(SLOTS.receive)).toBeUndefined();
        expect(slots.get(SLOTS.forward)).toBeUndefined();
      });
      await sendOnce('node');
    } finally {
      await overlay?.encapsulation.close();
      datapath.detachNode();
      datapath.close();
      removePinRoot(pinRoot);
    }
  });

  it('takes over from the receive program an earlier version attached to the underlay itself', async () => {
    const pinRoot = makePinRoot('geneve-legacy');
    const datapath = await startBase(pinRoot);
    const legacy = BpfObject.open(geneveObject, { pinRoot });
    const legacyIngress = { interface: underlay.ifindex, direction: 'ingress' as const, handle: 0x6081, priority: 1 };
    let overlay: Overlay | undefined;
    try {
      legacy.load();
      attachTc(legacy.program(GENEVE_PROGRAMS.ingress), legacyIngress);
      overlay = await startOverlay(datapath);
      expect(queryTc(legacyIngress)).toBe(0);
      await sendOnce('pod');
    } finally {
      if (queryTc(legacyIngress) !== 0) detachTc(legacyIngress);
      legacy.close();
      await overlay?.teardown();
      datapath.detachNode();
      datapath.close();
      removePinRoot(pinRoot);
    }
  });
});

describe('the node’s own traffic to remote pods', () => {
  it('leaves the underlay as Geneve through the host device: VNI 1 (host), outer node → node, the inner packet as the node sent it', async () => {
    const pinRoot = makePinRoot('geneve-host');
    const datapath = newDatapath(pinRoot);
    let overlay: Overlay | undefined;
    // The neighbour node's tunnel port, as a plain socket: what arrives there is Geneve header + inner frame.
    const atPeer = spawn('ip', ['netns', 'exec', underlay.netns, process.execPath, '-e',
      `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>console.log(r.address+' '+m.toString('hex')));s.bind(6081,'${PEER}',()=>console.log('ready'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: atPeer.stdout! }).on('line', (l) => lines.push(l));
    try {
      await until('the peer socket', () => lines.includes('ready'));
      overlay = await startOverlay(datapath);
      await overlay.encapsulation.upsertNode({ name: 'remote', ipv4: PEER, podCidrs: [REMOTE_POD_CIDR] });
      const link = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', HOST_DEVICE], { encoding: 'utf8' })) as Array<{ mtu: number; flags: string[] }>;
      expect(link[0]).toMatchObject({ mtu: 1500 - 50 });
      expect(link[0]!.flags).toContain('NOARP');
      const sender = createSocket('udp4');
      await new Promise<void>((resolve, reject) => sender.send('from-the-node', 9999, REMOTE_POD, (e) => (e ? reject(e) : resolve())));
      sender.close();
      await until('a Geneve packet at the peer', () => lines.length > 1);
      const [from, hex] = lines[1]!.split(' ');
      const frame = Buffer.from(hex!, 'hex');
      expect(from).toBe(LOCAL);
      expect(frame.readUInt16BE(2)).toBe(0x6558); // Geneve protocol type: Ethernet
      expect(frame.readUIntBE(4, 3)).toBe(1); // VNI: the sending node's host identity
      const ip = frame.subarray(8 + 14);
      expect([...ip.subarray(12, 16)].join('.')).toBe(LOCAL);
      expect([...ip.subarray(16, 20)].join('.')).toBe(REMOTE_POD);
      expect(ip.subarray(28).toString()).toBe('from-the-node');
    } finally {
      atPeer.kill();
      await overlay?.teardown();
      datapath.close();
      removePinRoot(pinRoot);
    }
  });
});

describe('GeneveEncapsulation routes', () => {
  it('routes other nodes\' pod CIDRs through their tunnel endpoints and removes them when they leave', async () => {
    const pinRoot = makePinRoot('geneve-routes');
    const datapath = newDatapath(pinRoot);
    let overlay: Overlay | undefined;
    const routes = () =>
      JSON.parse(execFileSync('ip', ['-j', 'route', 'show', REMOTE_POD_CIDR], { encoding: 'utf8' })) as Array<{ dst: string; gateway?: string; dev: string; protocol: string; flags: string[] }>;
    try {
      overlay = await startOverlay(datapath);
      const { encapsulation } = overlay;
      await encapsulation.upsertNode({ name: 'remote', ipv4: PEER, podCidrs: [REMOTE_POD_CIDR, 'fd00:1::/64'] });
      expect(routes()).toMatchObject([{ dst: REMOTE_POD_CIDR, gateway: PEER, dev: HOST_DEVICE, flags: ['onlink'] }]);
      expect(encapsulation.routes('remote')).toHaveLength(1);
      await encapsulation.deleteNode('remote');
      expect(routes()).toEqual([]);
      // A node without any address gets nothing rather than a broken route.
      await encapsulation.upsertNode({ name: 'silent', podCidrs: [REMOTE_POD_CIDR] });
      expect(routes()).toEqual([]);
    } finally {
      await overlay?.teardown();
      datapath.close();
      removePinRoot(pinRoot);
    }
  });
});
