// The per-packet load balancer (bpf/lb.c in the service slots) through BPF_PROG_TEST_RUN, loaded
// as the agent loads it: the base objects with their resume programs (@cilia/datapath/testing),
// lb.o sharing their pinned maps, its programs in the service slots, and @cilia/lb writing the
// LB maps. Packets go through the base entry programs (cil_from_container, cil_from_netdev);
// the frames, verdicts, contexts and map entries they leave are checked.
import type { BpfMap, BpfObject, BpfProgram } from '@cilia/bpf';
import { packet, parsePacket, skbContext, TC_ACT, TCP_FLAGS, TestNetwork, type TestLink } from '@cilia/bpf/testing';
import { ReservedIdentity, type Logger, type Service, type ServiceBackend } from '@cilia/core';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath, type Datapath } from '@cilia/datapath/testing';
import { LoadBalancer, openLbMaps, type LbMaps } from '@cilia/lb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLbObject } from './testing.js';

const logger: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => logger };
// Per-process addresses: test files of other packages may run alongside in this netns.
const x = (process.pid % 200) + 20;
const VIP = `10.96.${x}.10`;
const REMOTE_BACKEND = `10.202.${x}.50`;
const NODE_IP = `192.168.${x}.1`;
const REMOTE_IDENTITY = 7300;

interface Pod {
  readonly ip: string;
  readonly link: TestLink;
  readonly info: ReturnType<typeof m.EndpointInfo.decode>;
}

/** One node: the base datapath, lb.o, the LB writer, and its pods. */
interface Node {
  readonly dp: Datapath;
  readonly lbObject: BpfObject;
  readonly maps: LbMaps;
  readonly lb: LoadBalancer;
  readonly fromContainer: BpfProgram;
  readonly fromNetdev: BpfProgram;
  readonly ct: BpfMap<m.CtKeyValue, m.CtEntry>;
  readonly metrics: ReturnType<BpfObject['perCpuMap']>;
}

const net = new TestNetwork();
const nodes: Node[] = [];
const pods: Pod[] = [];

function makeNode(): Node {
  const dp = loadDatapath();
  try {
    const lbObject = loadLbObject(dp, { LB_MAGLEV_SEED: 7 });
    const maps = openLbMaps(dp.pinRoot);
    const node: Node = {
      dp,
      lbObject,
      maps,
      lb: new LoadBalancer({ maps, nodeName: 'node-1', maglev: { tableSize: 251, seed: 7 }, logger }),
      fromContainer: dp.lxc.program('cil_from_container'),
      fromNetdev: dp.host.program('cil_from_netdev'),
      ct: dp.lxc.map('cilia_ct', { key: m.CtKey, value: m.CtValue }),
      metrics: dp.lxc.perCpuMap('cilia_metrics', { key: m.MetricsKey, value: m.MetricsValue }),
    };
    nodes.push(node);
    const ipcache = dp.lxc.map('cilia_ipcache', { key: m.IpcacheKey, value: m.IpcacheValue });
    ipcache.update(`${NODE_IP}/32`, { identity: ReservedIdentity.host, tunnelEndpoint: '0.0.0.0', flags: 0 });
    ipcache.update(`${REMOTE_BACKEND}/32`, { identity: REMOTE_IDENTITY, tunnelEndpoint: '0.0.0.0', flags: 0 });
    return node;
  } catch (err) {
    dp.dispose();
    throw err;
  }
}

function addPod(node: Node, ip: string, identity: number): Pod {
  const link = net.link({ forwarding: true });
  const n = pods.length + 1;
  const info = { ifindex: 2, hostIfindex: link.ifindex, identity, endpointId: 100 + n, flags: 0, mac: `02:00:00:${x.toString(16).padStart(2, '0')}:01:${n.toString(16).padStart(2, '0')}`, hostMac: link.mac };
  node.dp.lxc.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo }).update(ip, info);
  node.dp.lxc.map('cilia_ipcache', { key: m.IpcacheKey, value: m.IpcacheValue }).update(`${ip}/32`, { identity, tunnelEndpoint: '0.0.0.0', flags: 0 });
  const pod = { ip, link, info };
  pods.push(pod);
  return pod;
}

const backend = (address: string, state: ServiceBackend['state'] = 'active', port = 8080): ServiceBackend => ({ address, port, weight: 1, state, nodeName: 'node-1' });

function service(backends: ServiceBackend[], over: Partial<Service> & { port?: number; protocol?: 'TCP' | 'UDP'; address?: string } = {}): Service {
  const { port = 80, protocol = 'TCP', address = VIP, ...rest } = over;
  return {
    namespace: 'shop',
    name: 'web',
    frontend: { address, port, protocol, type: 'ClusterIP' },
    backends,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    sessionAffinitySeconds: 0,
    algorithm: 'random',
    ...rest,
  };
}

function send(prog: BpfProgram, frame: Buffer, ifindex: number) {
  const r = prog.testRun({ data: frame, ctx: skbContext({ ifindex }) });
  return { retval: r.retval | 0, data: r.data as Buffer, context: m.contextFromSkb(r.ctx as Buffer), out: parsePacket(r.data as Buffer) };
}

const tcpFrom = (pod: Pod, dst: string, sport: number, dport = 80, flags: number = TCP_FLAGS.SYN) =>
  packet().eth({ src: pod.info.mac, dst: pod.info.hostMac }).ipv4({ src: pod.ip, dst }).tcp({ sport, dport, flags }).payload('hi').build();

const dropped = (node: Node, reason: number, dir: number) =>
  ((node.metrics.lookup({ reason, dir }) ?? []) as Array<{ packets: number }>).reduce((n, v) => n + v.packets, 0);

let a: Pod;
let b1: Pod;
let b2: Pod;
let node: Node;
let sport = 20000;

beforeAll(() => {
  try {
    node = makeNode();
    a = addPod(node, `10.201.${x}.10`, 4001);
    b1 = addPod(node, `10.201.${x}.21`, 4002);
    b2 = addPod(node, `10.201.${x}.22`, 4002);
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  for (const n of nodes.splice(0)) {
    n.maps.close();
    n.dp.dispose();
  }
  net.remove();
}
afterAll(cleanup);

describe('per-packet load balancing in the service slot', () => {
  it('translates a pod\'s connection to a ClusterIP to one backend, the same for every packet, tracked with the frontend id', () => {
    node.lb.apply([service([backend(b1.ip), backend(b2.ip)])], []);
    const id = node.lb.frontendId({ address: VIP, port: 80, protocol: 'TCP' })!;
    const p = sport++;
    const syn = send(node.fromContainer, tcpFrom(a, VIP, p), a.link.ifindex);
    expect(syn.retval).toBe(TC_ACT.REDIRECT);
    const chosen = syn.out.ipv4!.dst;
    expect([b1.ip, b2.ip]).toContain(chosen);
    const target = chosen === b1.ip ? b1 : b2;
    expect(syn.out.ipv4).toMatchObject({ src: a.ip, checksumOk: true });
    expect(syn.out.tcp).toMatchObject({ sport: p, dport: 8080, checksumOk: true });
    expect(syn.out.eth).toMatchObject({ dst: target.info.mac, src: target.info.hostMac });
    // Policy and delivery saw the backend, not the VIP.
    expect(syn.context).toMatchObject({ targetIfindex: target.link.ifindex, dstIdentity: 4002 });
    // The translated connection's conntrack entry names the frontend (for its replies).
    expect(node.ct.lookup({ saddr: a.ip, daddr: chosen, sport: p, dport: 8080, proto: 6, flags: 0 })).toMatchObject({ revNatIndex: id });
    expect(node.maps.flows.lookup({ saddr: a.ip, daddr: VIP, sport: p, dport: 80, proto: 6, flags: 0 })).toMatchObject({ revNatIndex: id, backendId: node.lb.backendId(`${chosen}:8080/TCP`) });
    for (let i = 0; i < 10; i++) expect(send(node.fromContainer, tcpFrom(a, VIP, p, 80, TCP_FLAGS.ACK), a.link.ifindex).out.ipv4!.dst).toBe(chosen);
  });

  it('rewrites a local backend\'s reply back to the frontend and delivers it to the client', () => {
    const p = sport++;
    const chosen = send(node.fromContainer, tcpFrom(a, VIP, p), a.link.ifindex).out.ipv4!.dst;
    const from = chosen === b1.ip ? b1 : b2;
    const reply = packet().eth({ src: from.info.mac, dst: from.info.hostMac }).ipv4({ src: from.ip, dst: a.ip }).tcp({ sport: 8080, dport: p, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }).payload('ok').build();
    const r = send(node.fromContainer, reply, from.link.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.out.ipv4).toMatchObject({ src: VIP, dst: a.ip, checksumOk: true });
    expect(r.out.tcp).toMatchObject({ sport: 80, dport: p, checksumOk: true });
    expect(r.out.eth).toMatchObject({ dst: a.info.mac });
  });

  it('sends a connection to a remote backend to the stack, and rewrites its reply from the network back to the frontend', () => {
    node.lb.apply([service([{ ...backend(REMOTE_BACKEND), nodeName: 'node-2' }], { port: 81 })], []);
    const p = sport++;
    const out = send(node.fromContainer, tcpFrom(a, VIP, p, 81), a.link.ifindex);
    expect(out.retval).toBe(TC_ACT.OK);
    expect(out.out.ipv4).toMatchObject({ src: a.ip, dst: REMOTE_BACKEND, checksumOk: true });
    expect(out.context).toMatchObject({ dstIdentity: REMOTE_IDENTITY, targetIfindex: 0 });
    const reply = packet().eth().ipv4({ src: REMOTE_BACKEND, dst: a.ip }).tcp({ sport: 8080, dport: p, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }).build();
    const back = send(node.fromNetdev, reply, a.link.ifindex);
    expect(back.retval).toBe(TC_ACT.REDIRECT);
    expect(back.out.ipv4).toMatchObject({ src: VIP, dst: a.ip, checksumOk: true });
    expect(back.out.tcp).toMatchObject({ sport: 81, dport: p, checksumOk: true });
  });

  it('keeps a connection on its backend once that backend terminates, and sends new ones to the others', () => {
    node.lb.apply([service([backend(b1.ip), backend(b2.ip)], { port: 82 })], []);
    let onB1: number | undefined;
    for (let i = 0; i < 50 && onB1 === undefined; i++) {
      const p = sport++;
      if (send(node.fromContainer, tcpFrom(a, VIP, p, 82), a.link.ifindex).out.ipv4!.dst === b1.ip) onB1 = p;
    }
    expect(onB1).toBeDefined();
    node.lb.apply([service([backend(b1.ip, 'terminating'), backend(b2.ip)], { port: 82 })], []);
    for (let i = 0; i < 5; i++) expect(send(node.fromContainer, tcpFrom(a, VIP, onB1!, 82, TCP_FLAGS.ACK), a.link.ifindex).out.ipv4!.dst).toBe(b1.ip);
    for (let i = 0; i < 20; i++) expect(send(node.fromContainer, tcpFrom(a, VIP, sport++, 82), a.link.ifindex).out.ipv4!.dst).toBe(b2.ip);
    // With no ready backend left, the terminating one takes new connections (Kubernetes' rule).
    node.lb.apply([service([backend(b1.ip, 'terminating')], { port: 82 })], []);
    expect(send(node.fromContainer, tcpFrom(a, VIP, sport++, 82), a.link.ifindex).out.ipv4!.dst).toBe(b1.ip);
  });

  it('answers a connection to a frontend without backends with ICMP port unreachable from the frontend, counted as NO_SERVICE', () => {
    node.lb.apply([service([], { port: 83 }), service([backend(b1.ip, 'maintenance')], { port: 84, protocol: 'UDP' })], []);
    for (const [frame, quoted] of [
      [tcpFrom(a, VIP, 30001, 83), 6],
      [packet().eth({ src: a.info.mac, dst: a.info.hostMac }).ipv4({ src: a.ip, dst: VIP }).udp({ sport: 30002, dport: 84 }).payload('q').build(), 17],
    ] as const) {
      const before = dropped(node, m.DropReason.noService, m.Direction.egress);
      const r = send(node.fromContainer, frame, a.link.ifindex);
      expect(r.retval).toBe(TC_ACT.REDIRECT); // back through the veth's peer, into the pod
      expect(r.data.length).toBe(70);
      expect(r.out.eth).toMatchObject({ dst: a.info.mac, src: a.info.hostMac });
      expect(r.out.ipv4).toMatchObject({ src: VIP, dst: a.ip, protocol: 1, checksumOk: true });
      expect(r.out.icmp).toMatchObject({ type: 3, code: 3, checksumOk: true });
      // It quotes the refused packet: its IPv4 header and the ports.
      const quote = r.out.payload;
      expect(Buffer.compare(quote.subarray(0, 20), frame.subarray(14, 34))).toBe(0);
      expect(quote[9]).toBe(quoted);
      expect(dropped(node, m.DropReason.noService, m.Direction.egress)).toBe(before + 1);
    }
  });

  it('translates a NodePort connection arriving on the node device to a local backend, leaves the host\'s own traffic alone, and drops a Local-only frontend without a local backend silently', () => {
    const CLIENT = `172.16.${x}.9`;
    node.lb.apply(
      [
        { ...service([backend(b1.ip)]), frontend: { address: NODE_IP, port: 30080, protocol: 'TCP', type: 'NodePort' } },
        { ...service([{ ...backend(REMOTE_BACKEND), nodeName: 'node-2' }]), frontend: { address: NODE_IP, port: 30081, protocol: 'TCP', type: 'NodePort' }, externalTrafficPolicy: 'Local' },
      ],
      [],
    );
    const id = node.lb.frontendId({ address: NODE_IP, port: 30080, protocol: 'TCP' })!;
    const p = sport++;
    const syn = packet().eth().ipv4({ src: CLIENT, dst: NODE_IP }).tcp({ sport: p, dport: 30080, flags: TCP_FLAGS.SYN }).build();
    const r = send(node.fromNetdev, syn, a.link.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.out.ipv4).toMatchObject({ src: CLIENT, dst: b1.ip, checksumOk: true });
    expect(r.out.tcp).toMatchObject({ sport: p, dport: 8080, checksumOk: true });
    expect(r.out.eth).toMatchObject({ dst: b1.info.mac });
    expect(node.ct.lookup({ saddr: CLIENT, daddr: b1.ip, sport: p, dport: 8080, proto: 6, flags: 0 })).toMatchObject({ revNatIndex: id });
    // The backend's reply leaves from the node address and port again.
    const reply = packet().eth({ src: b1.info.mac, dst: b1.info.hostMac }).ipv4({ src: b1.ip, dst: CLIENT }).tcp({ sport: 8080, dport: p, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }).build();
    const back = send(node.fromContainer, reply, b1.link.ifindex);
    expect(back.out.ipv4).toMatchObject({ src: NODE_IP, dst: CLIENT, checksumOk: true });
    expect(back.out.tcp).toMatchObject({ sport: 30080, dport: p, checksumOk: true });
    // The host's own traffic to its address passes as it came.
    const ssh = packet().eth().ipv4({ src: CLIENT, dst: NODE_IP }).tcp({ sport: p, dport: 22, flags: TCP_FLAGS.SYN }).build();
    const host = send(node.fromNetdev, ssh, a.link.ifindex);
    expect(host.retval).toBe(TC_ACT.OK);
    expect(Buffer.compare(host.data, ssh)).toBe(0);
    // externalTrafficPolicy Local, no backend here: no answer at all, counted NO_SERVICE.
    const before = dropped(node, m.DropReason.noService, m.Direction.ingress);
    const local = send(node.fromNetdev, packet().eth().ipv4({ src: CLIENT, dst: NODE_IP }).tcp({ sport: p, dport: 30081, flags: TCP_FLAGS.SYN }).build(), a.link.ifindex);
    expect(local.retval).toBe(TC_ACT.SHOT);
    expect(dropped(node, m.DropReason.noService, m.Direction.ingress)).toBe(before + 1);
  });

  it('spreads new connections over the backends at random: 300 connections, each of 3 backends ≥ 15 %', () => {
    const b3 = REMOTE_BACKEND;
    node.lb.apply([service([backend(b1.ip), backend(b2.ip), { ...backend(b3), nodeName: 'node-2' }], { port: 85 })], []);
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const dst = send(node.fromContainer, tcpFrom(a, VIP, sport++, 85), a.link.ifindex).out.ipv4!.dst;
      seen.set(dst, (seen.get(dst) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual([b1.ip, b2.ip, b3].sort());
    for (const n of seen.values()) expect(n).toBeGreaterThanOrEqual(45);
  });

  it('keeps ClientIP affinity: every connection of a client to one backend until the affinity times out', () => {
    node.lb.apply([service([backend(b1.ip), backend(b2.ip), { ...backend(REMOTE_BACKEND), nodeName: 'node-2' }], { port: 86, sessionAffinitySeconds: 2 })], []);
    const id = node.lb.frontendId({ address: VIP, port: 86, protocol: 'TCP' })!;
    const first = send(node.fromContainer, tcpFrom(a, VIP, sport++, 86), a.link.ifindex).out.ipv4!.dst;
    for (let i = 0; i < 49; i++) expect(send(node.fromContainer, tcpFrom(a, VIP, sport++, 86), a.link.ifindex).out.ipv4!.dst).toBe(first);
    // Each time the affinity has run out (its last use set 3 s back), a new choice is made.
    const key = { client: BigInt(Buffer.from(a.ip.split('.').map(Number)).readUInt32LE(0)), revNatIndex: id, netns: 0 };
    const value = node.maps.affinity.lookup(key)!;
    expect(value).toBeDefined();
    const choices = new Set<string>();
    for (let i = 0; i < 20; i++) {
      node.maps.affinity.update(key, { ...value, lastUsedNs: process.hrtime.bigint() - 3_000_000_000n });
      choices.add(send(node.fromContainer, tcpFrom(a, VIP, sport++, 86), a.link.ifindex).out.ipv4!.dst);
    }
    expect(choices.size).toBeGreaterThan(1);
  });

  it('Maglev: two nodes with different backend ids pick the same backend for each of 1000 flows', () => {
    const other = makeNode();
    const clients = [a, addPod(other, a.ip, 4001)] as const;
    const backends = Array.from({ length: 10 }, (_, i) => ({ ...backend(`10.203.${x}.${i + 1}`), nodeName: 'node-2' }));
    // Node 2 first learns other backends, and its backends in another order: other ids.
    other.lb.apply([service([{ ...backend(`10.204.${x}.1`), nodeName: 'node-3' }], { port: 99 })], []);
    node.lb.apply([service(backends, { port: 87, algorithm: 'maglev' })], []);
    other.lb.apply([service([...backends].reverse(), { port: 87, algorithm: 'maglev' })], []);
    expect(node.lb.backendId(`10.203.${x}.1:8080/TCP`)).not.toBe(other.lb.backendId(`10.203.${x}.1:8080/TCP`));
    const picks = [node, other].map((n, k) => {
      const c = clients[k]!;
      return Array.from({ length: 1000 }, (_, i) => send(n.fromContainer, tcpFrom(c, VIP, 40000 + i, 87), c.link.ifindex).out.ipv4!.dst);
    });
    expect(picks[1]).toEqual(picks[0]);
    // And they are spread: each backend gets some of the flows.
    expect(new Set(picks[0]).size).toBe(10);
  });

  it('a restarted writer finds the same frontend and backend ids in the maps and rewrites nothing', () => {
    const services = [service([backend(b1.ip), backend(b2.ip)], { port: 88 }), service([backend(b2.ip)], { port: 89, algorithm: 'maglev' })];
    node.lb.apply(services, []);
    const ids = services.map((s) => node.lb.frontendId(s.frontend));
    const before = [...node.maps.services.lookupBatch()].map(([k, v]) => JSON.stringify([k, v])).sort();
    const again = new LoadBalancer({ maps: node.maps, nodeName: 'node-1', maglev: { tableSize: 251, seed: 7 }, logger });
    expect(services.map((s) => again.frontendId(s.frontend))).toEqual(ids);
    expect(again.backendId(`${b1.ip}:8080/TCP`)).toBe(node.lb.backendId(`${b1.ip}:8080/TCP`));
    expect(again.unclaimed).toBeGreaterThan(0);
    again.sync([...node.lb.list()]);
    expect([...node.maps.services.lookupBatch()].map(([k, v]) => JSON.stringify([k, v])).sort()).toEqual(before);
    expect(again.unclaimed).toBe(0);
  });
});
