// The Geneve programs through BPF_PROG_TEST_RUN, loaded as the agent loads them: the base
// lxc.o and host.o with their resume programs and cil_from_netdev_main, this plugin's object
// sharing their pinned maps, the encap program in the from-container forward slot and the
// receive program in the from-netdev pre hook, so tunnel packets go through host.o's
// cil_from_netdev as on a node. FIB lookups see veths made here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject, type BpfProgram, type ProgramArray } from '@cilia/bpf';
import { checksum, compileBpf, packet, skbContext, TC_ACT, type TestLink, TestNetwork, writePcap } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath, type Datapath } from '@cilia/datapath/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipv4HostOrder } from './address.js';
import { geneveFrame } from './testing/geneve-frames.js';

const net = new TestNetwork();
let dp: Datapath | undefined;
let geneve: BpfObject;
let fromContainer: BpfProgram;
let fromOverlay: BpfProgram;
let fromNetdev: BpfProgram;
let fromNetdevMain: BpfProgram;
let slotTable: ProgramArray;
let pod: TestLink;
let pod2: TestLink;
let underlay: TestLink;

// Per-process addresses: test files of other packages may run alongside in this netns.
const x = (process.pid % 200) + 20;
const LOCAL_NODE = `198.18.${x}.1`;
const REMOTE_NODE = `198.18.${x}.2`;
const REMOTE_NODE_MAC = '02:00:00:00:0e:02';
const UNREACHABLE_NODE = `198.19.${x}.9`;
const POD_A = `10.221.${x}.10`;
const POD_B = `10.221.${x}.11`;
const REMOTE_POD = `10.222.${x}.20`;
const STRANDED_POD = `10.222.${x}.30`;
const BLACKHOLED_POD = `10.222.${x}.40`;
const ID_A = 5001;
const ID_B = 5002;
const ID_REMOTE = 6002;


let maps: {
  endpoints: ReturnType<typeof endpointsMap>;
  ipcache: ReturnType<typeof ipcacheMap>;
  metrics: ReturnType<typeof metricsMap>;
};
const endpointsMap = (o: BpfObject) => o.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo });
const ipcacheMap = (o: BpfObject) => o.map('cilia_ipcache', { key: m.IpcacheKey, value: m.IpcacheValue });
const metricsMap = (o: BpfObject) => o.perCpuMap('cilia_metrics', { key: m.MetricsKey, value: m.MetricsValue });

function dropped(reason: number, dir: number): number {
  return (maps.metrics.lookup({ reason, dir }) ?? []).reduce((n, v) => n + v.packets, 0);
}

function run(prog: BpfProgram, frame: Buffer, ifindex: number) {
  const r = prog.testRun({ data: frame, ctx: skbContext({ ifindex }) });
  // tc verdicts are ints; the kernel hands the u32 back.
  return { retval: r.retval | 0, data: r.data as Buffer, context: m.contextFromSkb(r.ctx as Buffer) };
}

beforeAll(() => {
  try {
    pod = net.link({ forwarding: true });
    pod2 = net.link({ forwarding: true });
    underlay = net.link({ address: `${LOCAL_NODE}/24` });
    net.neighbour(underlay, REMOTE_NODE, REMOTE_NODE_MAC);
    net.route('blackhole', `${UNREACHABLE_NODE}/32`);
    dp = loadDatapath();
    const { lxc, host } = dp;
    const slots = lxc.programArray('cilia_tc_slots');
    const fromNetdevSpec = m.BASE_PROGRAMS.host['from-netdev'];
    geneve = dp.load(compileBpf('overlay-geneve', { srcDir: new URL('../bpf/', import.meta.url) }), { GENEVE_PORT: 6081, TUNNEL_IPV4: ipv4HostOrder(LOCAL_NODE) });
    slots.set(m.slotIndex('from-container', 'forward'), geneve.program('cil_geneve_to_overlay'));
    slots.set(m.slotIndex('from-netdev', 'pre'), geneve.program('cil_geneve_from_overlay'));
    fromContainer = lxc.program('cil_from_container');
    fromOverlay = geneve.program('cil_geneve_from_overlay');
    fromNetdev = host.program(fromNetdevSpec.program);
    fromNetdevMain = host.program(fromNetdevSpec.main);
    slotTable = slots;
    maps = { endpoints: endpointsMap(lxc), ipcache: ipcacheMap(lxc), metrics: metricsMap(lxc) };
    for (const [ip, link, identity, id] of [[POD_A, pod, ID_A, 61], [POD_B, pod2, ID_B, 62]] as const) {
      maps.endpoints.update(ip, { ifindex: 2, hostIfindex: link.ifindex, identity, endpointId: id, flags: 0, mac: `02:00:00:00:01:${id}`, hostMac: `02:00:00:00:02:${id}` });
      maps.ipcache.update(`${ip}/32`, { identity, tunnelEndpoint: '0.0.0.0', flags: 0 });
    }
    maps.ipcache.update(`${REMOTE_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: REMOTE_NODE, flags: 0 });
    maps.ipcache.update(`${STRANDED_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: '0.0.0.0', flags: 0 });
    maps.ipcache.update(`${BLACKHOLED_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: UNREACHABLE_NODE, flags: 0 });
    maps.ipcache.update(`${LOCAL_NODE}/32`, { identity: 1, tunnelEndpoint: '0.0.0.0', flags: 0 });
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  dp?.dispose();
  net.remove();
}
afterAll(cleanup);

const fromA = (dst: string, sport: number): Buffer =>
  packet().eth({ src: '02:00:00:00:01:61', dst: '02:00:00:00:02:61' }).ipv4({ src: POD_A, dst }).tcp({ sport, dport: 80 }).payload('hello geneve').build();

describe('encapsulation (from-container forward slot)', () => {
  it('wraps a packet for a pod behind a tunnel endpoint in valid Geneve with the source identity as VNI', () => {
    const inner = fromA(REMOTE_POD, 40001);
    const forwarded = dropped(m.DropReason.forwarded, m.Direction.egress);
    const r = run(fromContainer, inner, pod.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    const out = r.data;
    expect(out.length).toBe(inner.length + 50);
    // Outer Ethernet: towards the next hop the FIB named, from the underlay device.
    expect(out.subarray(0, 6).toString('hex')).toBe(REMOTE_NODE_MAC.replaceAll(':', ''));
    expect(out.subarray(6, 12).toString('hex')).toBe(underlay.mac.replaceAll(':', ''));
    expect(out.readUInt16BE(12)).toBe(0x0800);
    // Outer IPv4: node to node, UDP, whole length, a valid header checksum.
    const ip = out.subarray(14, 34);
    expect(ip[0]).toBe(0x45);
    expect(ip.readUInt16BE(2)).toBe(out.length - 14);
    expect(ip[9]).toBe(17);
    expect([...ip.subarray(12, 16)].join('.')).toBe(LOCAL_NODE);
    expect([...ip.subarray(16, 20)].join('.')).toBe(REMOTE_NODE);
    expect(checksum(ip)).toBe(0);
    // UDP: to 6081, from the dynamic range, checksum 0.
    const udp = out.subarray(34, 42);
    expect(udp.readUInt16BE(2)).toBe(6081);
    expect(udp.readUInt16BE(0)).toBeGreaterThanOrEqual(49152);
    expect(udp.readUInt16BE(4)).toBe(out.length - 34);
    expect(udp.readUInt16BE(6)).toBe(0);
    // Geneve: version 0, no options, Ethernet payload, VNI = identity of pod A.
    const g = out.subarray(42, 50);
    expect([g[0], g[1]]).toEqual([0, 0]);
    expect(g.readUInt16BE(2)).toBe(0x6558);
    expect(g.readUIntBE(4, 3)).toBe(ID_A);
    expect(g[7]).toBe(0);
    // The pod's frame, byte for byte.
    expect(out.subarray(50).equals(inner)).toBe(true);
    expect(dropped(m.DropReason.forwarded, m.Direction.egress)).toBe(forwarded + 1);
  });

  it('keeps the outer source port of a flow, and varies it between flows', () => {
    const port = (sport: number) => run(fromContainer, fromA(REMOTE_POD, sport), pod.ifindex).data.readUInt16BE(34);
    expect(port(40100)).toBe(port(40100));
    const ports = new Set([40101, 40102, 40103, 40104, 40105, 40106].map(port));
    expect(ports.size).toBeGreaterThan(1);
  });

  it('produces frames tshark decodes as Geneve with the VNI and the inner TCP flow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-geneve-'));
    try {
      const file = join(dir, 'encap.pcap');
      writePcap(file, [run(fromContainer, fromA(REMOTE_POD, 40200), pod.ifindex).data]);
      const fields = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'geneve.vni', '-e', 'geneve.proto_type', '-e', 'ip.src', '-e', 'tcp.dstport'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const [vni, proto, ipSrc, dport] = fields.trim().split('|');
      expect(Number(vni)).toBe(ID_A);
      expect(Number(proto)).toBe(0x6558);
      // The outer and the inner source address, in that order.
      expect(ipSrc).toBe(`${LOCAL_NODE},${POD_A}`);
      expect(dport).toBe('80');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves local destinations to the base delivery and unknown ones to the stack', () => {
    const local = run(fromContainer, fromA(POD_B, 40300), pod.ifindex);
    expect(local.retval).toBe(TC_ACT.REDIRECT);
    expect(local.data.length).toBe(fromA(POD_B, 40300).length);
    const world = fromA('203.0.113.7', 40301);
    const out = run(fromContainer, world, pod.ifindex);
    expect(out.retval).toBe(TC_ACT.OK);
    expect(out.data.equals(world)).toBe(true);
  });

  it('drops a pod with no tunnel endpoint (13) and one the underlay cannot reach (14)', () => {
    const noTunnel = dropped(m.DropReason.noTunnelEndpoint, m.Direction.egress);
    expect(run(fromContainer, fromA(STRANDED_POD, 40400), pod.ifindex).retval).toBe(TC_ACT.SHOT);
    expect(dropped(m.DropReason.noTunnelEndpoint, m.Direction.egress)).toBe(noTunnel + 1);
    const failed = dropped(m.DropReason.encapFailed, m.Direction.egress);
    expect(run(fromContainer, fromA(BLACKHOLED_POD, 40401), pod.ifindex).retval).toBe(TC_ACT.SHOT);
    expect(dropped(m.DropReason.encapFailed, m.Direction.egress)).toBe(failed + 1);
  });
});

describe('decapsulation (the from-netdev pre hook of the underlay device)', () => {
  const innerToA = (sport = 41000): Buffer =>
    packet().eth({ src: '02:00:00:00:0f:01', dst: '02:00:00:00:0f:02' }).ipv4({ src: REMOTE_POD, dst: POD_A, ttl: 63 }).udp({ sport, dport: 53 }).payload('inner payload').build();
  const tunnelled = (over: Partial<Parameters<typeof geneveFrame>[0]> = {}): Buffer =>
    geneveFrame({ outerSrc: REMOTE_NODE, outerDst: LOCAL_NODE, vni: ID_REMOTE, inner: innerToA(), ...over });

  it('strips the outer headers and delivers the inner packet to the endpoint with the VNI as source identity', () => {
    const inner = innerToA(41001);
    const r = run(fromNetdev, tunnelled({ inner }), underlay.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({ srcIdentity: ID_REMOTE, dstIdentity: ID_A, endpointId: 61, attachPoint: 1 });
    expect(r.context.flags & m.CTX_FLAGS.redirected).toBeTruthy();
    // Ethernet towards pod A from its gateway; the inner IPv4 packet after one router hop.
    expect(r.data.length).toBe(inner.length);
    expect(r.data.subarray(0, 12).toString('hex')).toBe('020000000161020000000261');
    expect(r.data[14 + 8]).toBe(62);
    expect(checksum(r.data.subarray(14, 34))).toBe(0);
    expect(r.data.subarray(34).equals(inner.subarray(34))).toBe(true);
  });

  it('takes VNI 1 (the sending node itself) as remote-node, never as this host', () => {
    const r = run(fromNetdev, tunnelled({ inner: innerToA(41003), vni: 1 }), underlay.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.srcIdentity).toBe(6);
  });

  it('skips options that are not critical', () => {
    const r = run(fromNetdev, tunnelled({ inner: innerToA(41002), options: Buffer.alloc(8, 0x11) }), underlay.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.srcIdentity).toBe(ID_REMOTE);
  });

  const notGeneve = (): Buffer[] => [
    tunnelled({ port: 6082 }),
    tunnelled({ outerDst: REMOTE_NODE }),
    packet().eth().ipv4({ src: REMOTE_NODE, dst: LOCAL_NODE }).tcp({ sport: 6081, dport: 6081 }).build(),
    packet().eth().ipv6({ src: 'fd00::1', dst: 'fd00::2' }).udp({ sport: 1, dport: 6081 }).build(),
    packet().eth().payload(Buffer.alloc(28)).build(), // ARP
    tunnelled().subarray(0, 14 + 20 + 4), // UDP header cut short
  ];

  it('hands anything that is not Geneve for this node back to the base, which passes it to the stack untouched', () => {
    for (const frame of notGeneve()) {
      const r = run(fromNetdev, frame, underlay.ifindex);
      expect(r.retval).toBe(TC_ACT.OK);
      expect(r.data.equals(frame)).toBe(true);
    }
  });

  it('hands a plain packet for a local pod back to the base, which delivers it', () => {
    const plain = packet().eth().ipv4({ src: REMOTE_POD, dst: POD_A, ttl: 63 }).udp({ sport: 41100, dport: 6081 }).payload('not tunnelled').build();
    const r = run(fromNetdev, plain, underlay.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    // The base's identities (the ipcache's for the source), not a VNI's.
    expect(r.context).toMatchObject({ srcIdentity: ID_REMOTE, dstIdentity: ID_A, endpointId: 61 });
    expect(r.data.length).toBe(plain.length);
  });

  it('without the base program to hand back to, leaves what is not Geneve to the stack untouched', () => {
    const main = m.slotIndex('from-netdev', 'main');
    slotTable.clear(main);
    try {
      for (const frame of notGeneve()) {
        const r = run(fromOverlay, frame, underlay.ifindex);
        expect(r.retval).toBe(TC_ACT.OK);
        expect(r.data.equals(frame)).toBe(true);
      }
    } finally {
      slotTable.set(main, fromNetdevMain);
    }
  });

  it('drops malformed or unusable tunnel packets as DECAP_FAILED (15)', () => {
    const before = dropped(m.DropReason.decapFailed, m.Direction.ingress);
    const bad = [
      tunnelled().subarray(0, 14 + 20 + 8 + 4), // Geneve header cut short
      tunnelled({ version: 1 }),
      tunnelled({ protocol: 0x0800 }),
      tunnelled({ oam: true }),
      tunnelled({ options: Buffer.alloc(4), critical: true }),
      tunnelled({ inner: packet().eth().payload(Buffer.alloc(28)).build() }), // inner ARP
      tunnelled({ inner: innerToA().subarray(0, 14 + 10) }), // inner IPv4 cut short
      tunnelled({ inner: packet().eth().ipv4({ src: REMOTE_POD, dst: `10.221.${x}.99` }).udp({ sport: 1, dport: 2 }).build() }), // no such endpoint
    ];
    for (const frame of bad) expect(run(fromNetdev, frame, underlay.ifindex).retval).toBe(TC_ACT.SHOT);
    expect(dropped(m.DropReason.decapFailed, m.Direction.ingress)).toBe(before + bad.length);
  });

  it('decapsulates what the encapsulation produced', () => {
    const sent = fromA(REMOTE_POD, 40500);
    const wire = run(fromContainer, sent, pod.ifindex).data;
    // Seen from the other side: addressed to this node, towards pod B here.
    const turned = Buffer.from(wire);
    turned.set(wire.subarray(30, 34), 26);
    turned.set(wire.subarray(26, 30), 30);
    const innerIp = 64;
    turned.set(Buffer.from(POD_B.split('.').map(Number)), innerIp + 16);
    turned.writeUInt16BE(0, innerIp + 10);
    turned.writeUInt16BE(checksum(turned.subarray(innerIp, innerIp + 20)), innerIp + 10);
    const r = run(fromNetdev, turned, underlay.ifindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({ srcIdentity: ID_A, dstIdentity: ID_B, endpointId: 62 });
    expect(r.data.length).toBe(sent.length);
  });
});
