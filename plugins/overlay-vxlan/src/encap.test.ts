// The forward slot (cil_vxlan_forward) through BPF_PROG_TEST_RUN, loaded as the agent loads it:
// the base objects with their resume programs (@cilia/datapath/testing), this plugin's object sharing its pinned maps, the
// program in the from-container forward slot. A pod's packet to a pod behind another node goes
// through cil_from_container and comes out as a VXLAN frame for the underlay; the FIB lookups
// see veths made here, and tshark judges the frames.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BpfObject, BpfProgram } from '@cilia/bpf';
import { checksum, packet, parsePacket, skbContext, TC_ACT, type TestLink, TestNetwork, writePcap } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath, type Datapath } from '@cilia/datapath/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVxlanObject } from './testing.js';
import { vxlanDeviceMac } from './vxlan.js';

const net = new TestNetwork();
let dp: Datapath | undefined;
let fromContainer: BpfProgram;
let pod: TestLink;
let underlay: TestLink;
let metrics: ReturnType<typeof metricsMap>;

// Per-process addresses: test files of other packages may run alongside in this netns.
const x = (process.pid % 200) + 20;
const LOCAL_NODE = `198.18.${x}.1`;
const REMOTE_NODE = `198.18.${x}.2`;
const REMOTE_NODE_MAC = '02:00:00:00:0e:12';
const UNREACHABLE_NODE = `198.19.${x}.9`;
const POD_A = `10.225.${x}.10`;
const REMOTE_POD = `10.226.${x}.20`;
const REMOTE_POD_CIDR = `10.227.${x}.0/24`;
const BLACKHOLED_POD = `10.226.${x}.40`;
const PORT = 8472;
const ID_A = 5201;
const ID_REMOTE = 6201;
const POD_MAC = '02:00:00:00:01:48';
const GATEWAY_MAC = '02:00:00:00:02:48';

const metricsMap = (o: BpfObject) => o.perCpuMap('cilia_metrics', { key: m.MetricsKey, value: m.MetricsValue });
const counted = (reason: number) => (metrics.lookup({ reason, dir: m.Direction.egress }) ?? []).reduce((n, v) => n + v.packets, 0);

function run(frame: Buffer) {
  const r = fromContainer.testRun({ data: frame, ctx: skbContext({ ifindex: pod.ifindex }) });
  return { retval: r.retval | 0, data: r.data as Buffer };
}

const fromA = (dst: string, sport: number): Buffer =>
  packet().eth({ src: POD_MAC, dst: GATEWAY_MAC }).ipv4({ src: POD_A, dst, ttl: 64 }).tcp({ sport, dport: 80 }).payload('hello vxlan').build();

beforeAll(() => {
  try {
    pod = net.link({ forwarding: true });
    underlay = net.link({ address: `${LOCAL_NODE}/24` });
    net.neighbour(underlay, REMOTE_NODE, REMOTE_NODE_MAC);
    net.route('blackhole', `${UNREACHABLE_NODE}/32`);
    dp = loadDatapath();
    const { lxc } = dp;
    const vxlan = loadVxlanObject(dp, LOCAL_NODE, PORT);
    lxc.programArray('cilia_tc_slots').set(m.slotIndex('from-container', 'forward'), vxlan.program('cil_vxlan_forward'));
    fromContainer = lxc.program('cil_from_container');
    const endpoints = lxc.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo });
    endpoints.update(POD_A, { ifindex: 2, hostIfindex: pod.ifindex, identity: ID_A, endpointId: 72, flags: 0, mac: POD_MAC, hostMac: GATEWAY_MAC });
    const ipcache = lxc.map('cilia_ipcache', { key: m.IpcacheKey, value: m.IpcacheValue });
    ipcache.update(`${POD_A}/32`, { identity: ID_A, tunnelEndpoint: '0.0.0.0', flags: 0 });
    ipcache.update(`${REMOTE_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: REMOTE_NODE, flags: 0 });
    // Another node's pod CIDR, as @cilia/nodes writes it while a pod's own entry is on its way.
    ipcache.update(REMOTE_POD_CIDR, { identity: 2, tunnelEndpoint: REMOTE_NODE, flags: 0 });
    ipcache.update(`${BLACKHOLED_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: UNREACHABLE_NODE, flags: 0 });
    metrics = metricsMap(lxc);
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  dp?.dispose();
  dp = undefined;
  net.remove();
}
afterAll(cleanup);

describe('VXLAN encapsulation in the from-container forward slot', () => {
  it('wraps a packet for a pod behind another node in VXLAN with the source identity as VNI, for the underlay', () => {
    const inner = fromA(REMOTE_POD, 41001);
    const forwarded = counted(m.DropReason.forwarded);
    const r = run(inner);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    const out = r.data;
    expect(out.length).toBe(inner.length + 50);
    // Outer Ethernet: towards the next hop the FIB named, from the underlay device.
    expect(out.subarray(0, 6).toString('hex')).toBe(REMOTE_NODE_MAC.replaceAll(':', ''));
    expect(out.subarray(6, 12).toString('hex')).toBe(underlay.mac.replaceAll(':', ''));
    // Outer IPv4: this node's tunnel endpoint to the remote one, UDP, TTL 64, valid checksum.
    const ip = out.subarray(14, 34);
    expect([ip[0], ip[8], ip[9]]).toEqual([0x45, 64, 17]);
    expect(ip.readUInt16BE(2)).toBe(out.length - 14);
    expect([...ip.subarray(12, 16)].join('.')).toBe(LOCAL_NODE);
    expect([...ip.subarray(16, 20)].join('.')).toBe(REMOTE_NODE);
    expect(checksum(ip)).toBe(0);
    // UDP: to the VXLAN port, from the dynamic range, checksum 0.
    const udp = out.subarray(34, 42);
    expect(udp.readUInt16BE(2)).toBe(PORT);
    expect(udp.readUInt16BE(0)).toBeGreaterThanOrEqual(49152);
    expect(udp.readUInt16BE(4)).toBe(out.length - 34);
    expect(udp.readUInt16BE(6)).toBe(0);
    // VXLAN: the VNI flag only, VNI = pod A's identity.
    const vx = out.subarray(42, 50);
    expect([vx[0], vx[1], vx[2], vx[3], vx[7]]).toEqual([0x08, 0, 0, 0, 0]);
    expect(vx.readUIntBE(4, 3)).toBe(ID_A);
    // The inner frame: device MAC to device MAC, the pod's packet one router hop on.
    const sent = parsePacket(out.subarray(50));
    expect(sent.eth).toMatchObject({ dst: vxlanDeviceMac(REMOTE_NODE), src: vxlanDeviceMac(LOCAL_NODE) });
    expect(sent.ipv4).toMatchObject({ src: POD_A, dst: REMOTE_POD, ttl: 63, checksumOk: true });
    expect(sent.tcp).toMatchObject({ sport: 41001, dport: 80, checksumOk: true });
    expect(sent.payload.toString()).toBe('hello vxlan');
    expect(counted(m.DropReason.forwarded)).toBe(forwarded + 1);
  });

  it('tunnels to a remote pod CIDR whose pod has no entry of its own yet', () => {
    const r = run(fromA(REMOTE_POD_CIDR.replace('.0/24', '.77'), 41002));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect([...r.data.subarray(30, 34)].join('.')).toBe(REMOTE_NODE);
    expect(r.data.readUIntBE(46, 3)).toBe(ID_A);
  });

  it('produces frames tshark decodes as VXLAN with the VNI and the inner flow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-vxlan-'));
    try {
      const file = join(dir, 'encap.pcap');
      writePcap(file, [run(fromA(REMOTE_POD, 41003)).data]);
      const fields = execFileSync('tshark', ['-r', file, '-d', `udp.port==${PORT},vxlan`, '-T', 'fields', '-E', 'separator=|', '-e', 'vxlan.vni', '-e', 'ip.src', '-e', 'tcp.dstport'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const [vni, ipSrc, dport] = fields.trim().split('|');
      expect(Number(vni)).toBe(ID_A);
      // The outer and the inner source address, in that order.
      expect(ipSrc).toBe(`${LOCAL_NODE},${POD_A}`);
      expect(dport).toBe('80');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves destinations without a tunnel endpoint to the stack, and drops what the underlay cannot reach', () => {
    const world = fromA('203.0.113.7', 41004);
    const out = run(world);
    expect(out.retval).toBe(TC_ACT.OK);
    expect(out.data.equals(world)).toBe(true);
    const failed = counted(m.DropReason.encapFailed);
    expect(run(fromA(BLACKHOLED_POD, 41005)).retval).toBe(TC_ACT.SHOT);
    expect(counted(m.DropReason.encapFailed)).toBe(failed + 1);
  });
});
