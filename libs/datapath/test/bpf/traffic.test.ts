// The base programs attached for real, with real packets: two pods, a node and an "outside"
// host, each in its own network namespace. Pod ↔ pod goes through bpf_redirect_peer, pod →
// node through the node's stack, pod → outside is masqueraded to the node's address.
// Programs are attached in the node namespace with `tc` through nsenter (the agent does it
// from its own namespace with @cilia/bpf's attachTc).
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingBufferConsumer } from '@cilia/bpf';
import {
  BASE_PROGRAMS,
  CtState,
  Direction,
  DropReason,
  EventType,
  PacketEvent,
  slotIndex,
  TracePoint,
  type PacketEventRecord,
} from '../../src/maps/index.js';
import { datapathMaps, metricPackets } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

const PEER = fileURLToPath(new URL('./peer.mjs', import.meta.url));
const tag = `${process.pid % 10000}`;
const ns = { node: `cdn${tag}`, a: `cda${tag}`, b: `cdb${tag}`, out: `cdo${tag}` };
const POD_A = '10.210.0.10';
const POD_B = '10.210.0.20';
const GATEWAY = '10.210.0.1';
const NODE_IP = '172.31.250.1';
const OUTSIDE_IP = '172.31.250.2';
const HOST_CONSTANTS = { SNAT_IPV4: 0xac1ffa01 }; // NODE_IP in host byte order

const sh = (args: string[]): string =>
  execFileSync(args[0] as string, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (netns: string, args: string[]): string => sh(['ip', 'netns', 'exec', netns, ...args]);
const link = (netns: string, name: string): { ifindex: number; address: string } =>
  (JSON.parse(sh(['ip', '-n', netns, '-j', 'link', 'show', name])) as Array<{ ifindex: number; address: string }>)[0] ?? {
    ifindex: 0,
    address: '',
  };

let dp: Datapath;
let consumer: RingBufferConsumer | undefined;
const events: PacketEventRecord[] = [];

function removeTopology(): void {
  for (const n of Object.values(ns)) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
}

/** A pod: its own netns, eth0 ↔ `host` in the node netns, addresses and routes as the agent sets them. */
function plumbPod(netns: string, host: string, ip: string): { hostIfindex: number; hostMac: string; mac: string } {
  sh(['ip', '-n', ns.node, 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  sh(['ip', '-n', ns.node, 'link', 'set', host, 'up']);
  const h = link(ns.node, host);
  inNs(netns, ['ip', 'link', 'set', 'lo', 'up']);
  inNs(netns, ['ip', 'link', 'set', 'eth0', 'up']);
  inNs(netns, ['ip', 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
  inNs(netns, ['ip', 'route', 'add', GATEWAY, 'dev', 'eth0', 'scope', 'link']);
  inNs(netns, ['ip', 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0']);
  inNs(netns, ['ip', 'neigh', 'add', GATEWAY, 'lladdr', h.address, 'dev', 'eth0', 'nud', 'permanent']);
  const pod = link(netns, 'eth0');
  sh(['ip', '-n', ns.node, 'route', 'add', `${ip}/32`, 'dev', host]);
  sh(['ip', '-n', ns.node, 'neigh', 'add', ip, 'lladdr', pod.address, 'dev', host, 'nud', 'permanent']);
  return { hostIfindex: h.ifindex, hostMac: h.address, mac: pod.address };
}

/**
 * Pins a loaded program and attaches it with tc in the node netns (same bpffs: nsenter keeps
 * mounts). Fixed priority and handle, so attaching again replaces the filter in place.
 */
function attach(program: { id: number; name: string }, dev: string, dir: 'ingress' | 'egress', generation = 1): void {
  const pin = `${dp.pinRoot}/prog${generation}_${program.name}_${dev}`;
  sh(['bpftool', 'prog', 'pin', 'id', String(program.id), pin]);
  const inNode = ['nsenter', `--net=/run/netns/${ns.node}`];
  try {
    sh([...inNode, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
  } catch {
    // already there
  }
  const filter = ['filter', 'replace', 'dev', dev, dir, 'prio', '1', 'handle', '1'];
  sh([...inNode, 'tc', ...filter, 'bpf', 'direct-action', 'pinned', pin]);
}

/** Attaches every base program of `d` to the pods' veths and the native device. */
function attachAll(d: Datapath, generation = 1): void {
  const lxc = BASE_PROGRAMS.lxc;
  for (const dev of ['lxca', 'lxcb']) {
    attach(d.lxc.program(lxc['from-container'].program), dev, 'ingress', generation);
    attach(d.lxc.program(lxc['to-container'].program), dev, 'egress', generation);
  }
  attach(d.host.program(BASE_PROGRAMS.host['from-netdev'].program), 'ext0', 'ingress', generation);
  attach(d.host.program(BASE_PROGRAMS.host['to-netdev'].program), 'ext0', 'egress', generation);
}

/** IP datagrams the stack of `netns` has forwarded (Ip: ForwDatagrams of /proc/net/snmp). */
function ipForwarded(netns: string): number {
  const lines = inNs(netns, ['cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const values = (lines[1] ?? '').split(/\s+/);
  return Number(values[names.indexOf('ForwDatagrams')]);
}

/** The id of the tc program on `dev`/`dir` in the node netns. */
function attachedId(dev: string, dir: 'ingress' | 'egress'): number {
  const out = sh(['nsenter', `--net=/run/netns/${ns.node}`, 'tc', '-j', 'filter', 'show', 'dev', dev, dir]);
  const filters = JSON.parse(out) as Array<{ options?: { prog?: { id: number } } }>;
  const ids = filters.map((f) => f.options?.prog?.id).filter((id): id is number => id !== undefined);
  if (ids.length !== 1) throw new Error(`expected one program on ${dev} ${dir}, found ${JSON.stringify(ids)}`);
  return ids[0] as number;
}

/** Runs a peer server in `netns`, resolves once it listens; `done` settles with its output. */
function server(netns: string, mode: 'tcp-server' | 'udp-server', port: number): Promise<{ done: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, PEER, mode, String(port)]);
    let out = '';
    let err = '';
    const done = new Promise<string>((res, rej) =>
      child.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`${mode} in ${netns}: ${err || out}`)))),
    );
    done.catch(() => undefined);
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.startsWith('ready')) resolve({ done });
    });
    child.on('error', reject);
    child.on('close', () => reject(new Error(`${mode} in ${netns} exited before listening: ${err}`)));
  });
}

const client = (netns: string, mode: 'tcp-client' | 'udp-client', host: string, port: number, msg: string): string =>
  inNs(netns, [process.execPath, PEER, mode, host, String(port), msg]).trim();

beforeAll(() => {
  removeTopology();
  try {
    for (const n of Object.values(ns)) sh(['ip', 'netns', 'add', n]);
    inNs(ns.node, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(ns.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // The node's native device, and the outside world behind it.
    sh(['ip', '-n', ns.node, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.out]);
    sh(['ip', '-n', ns.node, 'addr', 'add', `${NODE_IP}/24`, 'dev', 'ext0']);
    sh(['ip', '-n', ns.node, 'link', 'set', 'ext0', 'up']);
    inNs(ns.out, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(ns.out, ['ip', 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
    inNs(ns.out, ['ip', 'link', 'set', 'eth0', 'up']);
    const a = plumbPod(ns.a, 'lxca', POD_A);
    const b = plumbPod(ns.b, 'lxcb', POD_B);

    dp = loadDatapath(HOST_CONSTANTS);
    const maps = datapathMaps(dp);
    const entry = (p: typeof a, identity: number, endpointId: number) =>
      ({ ifindex: 2, hostIfindex: p.hostIfindex, identity, endpointId, flags: 0, mac: p.mac, hostMac: p.hostMac }) as const;
    maps.endpoints.update(POD_A, entry(a, 6001, 61));
    maps.endpoints.update(POD_B, entry(b, 6002, 62));
    maps.ipcache.update(`${NODE_IP}/32`, { identity: 1, tunnelEndpoint: '0.0.0.0', flags: 0 });
    attachAll(dp);
    consumer = new RingBufferConsumer(dp.lxc.map('cilia_events'), {
      onBatch: (batch) => events.push(...batch.decode(PacketEvent)),
    });
  } catch (err) {
    consumer?.close();
    removeTopology();
    dp?.dispose();
    throw err;
  }
});

afterAll(() => {
  consumer?.close();
  removeTopology(); // takes the links, and with them the tc filters
  dp?.dispose(); // removes the pin root with the program pins
});

describe('base datapath with real packets', () => {
  it('has every resume program installed', () => {
    const slots = dp.lxc.programArray('cilia_tc_slots');
    for (const ap of ['from-container', 'to-container', 'from-netdev', 'to-netdev'] as const) {
      expect(slots.get(slotIndex(ap, 'resume'))).toBeGreaterThan(0);
    }
  });

  it('pod → pod: ICMP, TCP and UDP, delivered by redirect to the peer', async () => {
    const maps = datapathMaps(dp);
    // With forwarding off in the node, only a delivery that bypasses its stack gets through.
    inNs(ns.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    try {
      inNs(ns.a, ['ping', '-c', '2', '-W', '2', '-i', '0.2', POD_B]);
      const tcp = await server(ns.b, 'tcp-server', 8080);
      expect(client(ns.a, 'tcp-client', POD_B, 8080, 'over tcp')).toBe(`${POD_A}|over tcp`);
      await tcp.done;
      const udp = await server(ns.b, 'udp-server', 5353);
      expect(client(ns.a, 'udp-client', POD_B, 5353, 'over udp')).toBe(`${POD_A}|over udp`);
      await udp.done;
    } finally {
      inNs(ns.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }

    const tcpEntries = [...maps.ct.entries()].filter(([k]) => k.saddr === POD_A && k.daddr === POD_B && k.proto === 6);
    expect(tcpEntries).toHaveLength(1);
    const [, entry] = tcpEntries[0] ?? [];
    expect(entry?.packetsOrig).toBeGreaterThan(2);
    expect(entry?.packetsReply).toBeGreaterThan(2);
    expect([CtState.closing, CtState.finWait, CtState.established]).toContain(entry?.state);
    expect(
      events.some((e) => e.hdr.type === EventType.trace && e.hdr.subtype === TracePoint.toEndpoint && e.daddr === POD_B),
    ).toBe(true);
  });

  it('pod → node through the host stack', async () => {
    const s = await server(ns.node, 'tcp-server', 9090);
    expect(client(ns.a, 'tcp-client', NODE_IP, 9090, 'to the node')).toBe(`${POD_A}|to the node`);
    await s.done;
  });

  it('pod → outside, masqueraded to the node address', async () => {
    const maps = datapathMaps(dp);
    const s = await server(ns.out, 'tcp-server', 7070);
    // The outside host has no route to the pods: only masquerading lets the reply come back.
    expect(client(ns.a, 'tcp-client', OUTSIDE_IP, 7070, 'to the world')).toBe(`${NODE_IP}|to the world`);
    await s.done;
    const u = await server(ns.out, 'udp-server', 7071);
    expect(client(ns.b, 'udp-client', OUTSIDE_IP, 7071, 'udp out')).toBe(`${NODE_IP}|udp out`);
    await u.done;
    inNs(ns.a, ['ping', '-c', '1', '-W', '2', OUTSIDE_IP]);
    const natted = [...maps.snat.entries()].filter(([k]) => k.dir === Direction.egress);
    expect(natted.map(([k]) => k.proto).sort((x, y) => x - y)).toEqual([1, 6, 17]);
    expect(metricPackets(maps.metrics, DropReason.forwarded, Direction.egress)).toBeGreaterThan(0);
  });

  it('outlives its loader; a new generation reuses the maps and replaces the programs', async () => {
    const before = datapathMaps(dp);
    const ctBefore = [...before.ct.keys()].length;
    const snatBefore = [...before.snat.keys()].length;
    consumer?.close();
    consumer = undefined;
    dp.close(); // the agent is gone: only pins, the slot table and tc hold the datapath

    inNs(ns.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    try {
      const s1 = await server(ns.b, 'tcp-server', 8081);
      expect(client(ns.a, 'tcp-client', POD_B, 8081, 'agent down')).toBe(`${POD_A}|agent down`);
      await s1.done;
    } finally {
      inNs(ns.node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }

    const oldIds = { ingress: attachedId('lxca', 'ingress'), netdev: attachedId('ext0', 'egress') };
    // The new generation also routes pod → outside itself (HOST_ROUTING): reuses every pinned
    // map, resume programs replaced.
    dp = loadDatapath(HOST_CONSTANTS, dp.pinRoot, { HOST_ROUTING: 1 });
    const after = datapathMaps(dp);
    // Nothing was flushed, and the connection made while the agent was down was tracked.
    expect([...after.ct.keys()].length).toBe(ctBefore + 1);
    expect([...after.ct.keys()].some((k) => k.dport === 8081 && k.saddr === POD_A)).toBe(true);
    expect([...after.snat.keys()].length).toBe(snatBefore);
    expect(after.endpoints.lookup(POD_A)?.endpointId).toBe(61);
    attachAll(dp, 2);
    expect(attachedId('lxca', 'ingress')).toBe(dp.lxc.program('cil_from_container').id);
    expect(attachedId('lxca', 'ingress')).not.toBe(oldIds.ingress);
    expect(attachedId('ext0', 'egress')).not.toBe(oldIds.netdev);

    // Routed by the datapath, not forwarded by the node's stack, and still masqueraded.
    const forwardedBefore = ipForwarded(ns.node);
    const s2 = await server(ns.out, 'tcp-server', 7072);
    expect(client(ns.a, 'tcp-client', OUTSIDE_IP, 7072, 'new generation')).toBe(`${NODE_IP}|new generation`);
    await s2.done;
    const u2 = await server(ns.out, 'udp-server', 7073);
    expect(client(ns.b, 'udp-client', OUTSIDE_IP, 7073, 'routed')).toBe(`${NODE_IP}|routed`);
    await u2.done;
    expect(ipForwarded(ns.node)).toBe(forwardedBefore);
    // The stack still forwards when asked to: with host routing off again it counts.
    const s3 = await server(ns.out, 'tcp-server', 7074);
    const legacy = loadDatapath(HOST_CONSTANTS, dp.pinRoot);
    try {
      attach(legacy.lxc.program('cil_from_container'), 'lxca', 'ingress', 3);
      expect(client(ns.a, 'tcp-client', OUTSIDE_IP, 7074, 'via stack')).toBe(`${NODE_IP}|via stack`);
      await s3.done;
      expect(ipForwarded(ns.node)).toBeGreaterThan(forwardedBefore);
    } finally {
      legacy.close();
    }
  });
});
