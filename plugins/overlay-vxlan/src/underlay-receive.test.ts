// The underlay receive program (cil_vxlan_from_underlay) through BPF_PROG_TEST_RUN, loaded as the
// agent loads it: the base lxc.o and host.o with their resume programs and cil_from_netdev_main,
// this plugin's object sharing their pinned maps, its program in the from-netdev pre hook. VXLAN
// frames therefore go through host.o's cil_from_netdev, as on a node's underlay device.
import type { BpfProgram } from '@cilia/bpf';
import { checksum, packet, skbContext, TC_ACT } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath, type Datapath } from '@cilia/datapath/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVxlanObject } from './testing.js';

/** CILIA_ENDPOINT_F_HOST (bpf/include/cilia/maps.h): the entry stands for the node itself. */
const ENDPOINT_F_HOST = 1;
let dp: Datapath | undefined;
let fromNetdev: BpfProgram;

// Per-process addresses: other test files may load their own objects alongside.
const x = (process.pid % 200) + 20;
const LOCAL_NODE = `198.18.${x}.1`;
const REMOTE_NODE = `198.18.${x}.2`;
const POD_A = `10.223.${x}.10`;
const REMOTE_POD = `10.224.${x}.20`;
const PORT = 8472;
const ID_A = 5101;
const ID_REMOTE = 6101;
const EP_ID = 71;
const POD_MAC = '02:00:00:00:01:47';
const GATEWAY_MAC = '02:00:00:00:02:47';

function run(frame: Buffer) {
  const r = fromNetdev.testRun({ data: frame, ctx: skbContext({ ifindex: 1 }) });
  return { retval: r.retval | 0, data: r.data as Buffer, context: m.contextFromSkb(r.ctx as Buffer) };
}

const innerToA = (sport: number, dst = POD_A): Buffer =>
  packet().eth({ src: '02:c1:00:00:00:02', dst: '02:c1:00:00:00:01' }).ipv4({ src: REMOTE_POD, dst, ttl: 63 }).udp({ sport, dport: 53 }).payload('inner payload').build();

interface VxlanFrameSpec {
  readonly inner: Buffer;
  readonly vni?: number;
  readonly flags?: number;
  readonly port?: number;
  readonly outerDst?: string;
}

/** Outer Ethernet/IPv4/UDP, the 8-byte VXLAN header (RFC 7348), then the inner frame. */
function vxlanFrame({ inner, vni = ID_REMOTE, flags = 0x08, port = PORT, outerDst = LOCAL_NODE }: VxlanFrameSpec): Buffer {
  const header = Buffer.alloc(8);
  header[0] = flags;
  header.writeUIntBE(vni, 4, 3);
  return packet()
    .eth()
    .ipv4({ src: REMOTE_NODE, dst: outerDst })
    .udp({ sport: 50000, dport: port })
    .payload(Buffer.concat([header, inner]))
    .build();
}

beforeAll(() => {
  try {
    dp = loadDatapath();
    const { lxc, host } = dp;
    const vxlan = loadVxlanObject(dp, LOCAL_NODE, PORT);
    lxc.programArray('cilia_tc_slots').set(m.slotIndex('from-netdev', 'pre'), vxlan.program('cil_vxlan_from_underlay'));
    fromNetdev = host.program(m.BASE_PROGRAMS.host['from-netdev'].program);
    const endpoints = lxc.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo });
    endpoints.update(POD_A, { ifindex: 2, hostIfindex: 1, identity: ID_A, endpointId: EP_ID, flags: 0, mac: POD_MAC, hostMac: GATEWAY_MAC });
    endpoints.update(LOCAL_NODE, { ifindex: 0, hostIfindex: 0, identity: 1, endpointId: 0, flags: ENDPOINT_F_HOST, mac: '00:00:00:00:00:00', hostMac: '00:00:00:00:00:00' });
    const ipcache = lxc.map('cilia_ipcache', { key: m.IpcacheKey, value: m.IpcacheValue });
    ipcache.update(`${POD_A}/32`, { identity: ID_A, tunnelEndpoint: '0.0.0.0', flags: 0 });
    ipcache.update(`${REMOTE_POD}/32`, { identity: ID_REMOTE, tunnelEndpoint: REMOTE_NODE, flags: 0 });
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  dp?.dispose();
  dp = undefined;
}
afterAll(cleanup);

describe('VXLAN on the underlay (the from-netdev pre hook)', () => {
  it('takes a frame for a local pod apart and delivers the inner packet with the VNI as source identity', () => {
    const inner = innerToA(42001);
    const r = run(vxlanFrame({ inner }));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({ srcIdentity: ID_REMOTE, dstIdentity: ID_A, endpointId: EP_ID, attachPoint: 1 });
    expect(r.context.flags & m.CTX_FLAGS.redirected).toBeTruthy();
    // Ethernet towards the pod from its gateway; the inner IPv4 packet after one router hop.
    expect(r.data.length).toBe(inner.length);
    expect(r.data.subarray(0, 12).toString('hex')).toBe((POD_MAC + GATEWAY_MAC).replaceAll(':', ''));
    expect(r.data[14 + 8]).toBe(62);
    expect(checksum(r.data.subarray(14, 34))).toBe(0);
    expect(r.data.subarray(34).equals(inner.subarray(34))).toBe(true);
  });

  it('takes VNI 1 (the sending node itself) as remote-node, never as this host', () => {
    const r = run(vxlanFrame({ inner: innerToA(42002), vni: 1 }));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.srcIdentity).toBe(6);
  });

  it('leaves everything else, untouched, to the base and so to the VXLAN device or the stack', () => {
    const others = [
      vxlanFrame({ inner: innerToA(42003, `10.223.${x}.99`) }), // no such pod: the device decides
      vxlanFrame({ inner: innerToA(42004, LOCAL_NODE) }), // for the node itself
      vxlanFrame({ inner: innerToA(42005), port: 4789 }),
      vxlanFrame({ inner: innerToA(42006), outerDst: `198.18.${x}.3` }),
      vxlanFrame({ inner: innerToA(42007), flags: 0x88 }), // an extension (GBP) the driver handles
      vxlanFrame({ inner: packet().eth().payload(Buffer.alloc(28)).build() }), // inner ARP
      vxlanFrame({ inner: innerToA(42008) }).subarray(0, 14 + 20 + 8 + 4), // VXLAN header cut short
      packet().eth().ipv4({ src: REMOTE_NODE, dst: LOCAL_NODE }).tcp({ sport: PORT, dport: PORT }).build(),
      packet().eth().ipv6({ src: 'fd00::1', dst: 'fd00::2' }).udp({ sport: 1, dport: PORT }).build(),
    ];
    for (const frame of others) {
      const r = run(frame);
      expect(r.retval).toBe(TC_ACT.OK);
      expect(r.data.equals(frame)).toBe(true);
    }
  });
});
