// The from-netdev pre hook (bpf/host.c, bpf/lib/slots.h): cil_from_netdev tail-calls the program
// at PRE before it parses, tracks or reverse-translates anything; that program takes packets or
// hands them back through MAIN (cil_from_netdev_main, installed like the resume programs).
// bpf/tests/pre_hook.c stands in for a tunnel's receive program: it takes UDP to port 9999.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfProgram } from '@cilia/bpf';
import { packet, parsePacket, TC_ACT } from '@cilia/bpf/testing';
import { AttachPointIndex, CtStatus, Direction, DropReason, slotIndex } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

const NODE_IP = '192.168.78.1';
const REMOTE = '203.0.113.50';
const TAKEN_PORT = 9999;

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let fromNetdev: BpfProgram;
let preProgram: BpfProgram;
let ep: ReturnType<typeof testEndpoint>;
const PRE = slotIndex('from-netdev', 'pre');
const MAIN = slotIndex('from-netdev', 'main');

beforeAll(() => {
  links = dummyLinks(2);
  try {
    dp = loadDatapath();
    preProgram = dp.loadMore('pre_hook').program('cil_pre_take_udp');
  } catch (err) {
    dp?.dispose();
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  fromNetdev = dp.host.program('cil_from_netdev');
  ep = testEndpoint('10.202.0.10', 31, links.ifindexes[0] ?? 0, 3001);
  maps.endpoints.update(ep.ip, ep.info);
  maps.ipcache.update(`${NODE_IP}/32`, { identity: 1, tunnelEndpoint: '0.0.0.0', flags: 0 });
});
afterAll(() => {
  dp?.dispose();
  links?.remove();
});

const udpTo = (dst: string, sport: number, dport: number): Buffer =>
  packet().eth().ipv4({ src: REMOTE, dst, ttl: 64 }).udp({ sport, dport }).payload('from the network').build();
const ctEntry = (sport: number, dport: number) => maps.ct.lookup({ saddr: REMOTE, daddr: ep.ip, sport, dport, proto: 17, flags: 0 });
const slots = () => dp.lxc.programArray('cilia_tc_slots');

function withPre<T>(fn: () => T): T {
  slots().set(PRE, preProgram);
  try {
    return fn();
  } finally {
    slots().clear(PRE);
  }
}

describe('from-netdev pre hook', () => {
  it('has its indices in the from-netdev window, main installed with the resume programs', () => {
    expect([PRE, MAIN]).toEqual([AttachPointIndex['from-netdev'] * 16 + 14, AttachPointIndex['from-netdev'] * 16 + 13]);
    expect(slots().get(MAIN)).toBe(dp.host.program('cil_from_netdev_main').id);
    expect(slots().get(PRE)).toBeUndefined();
  });

  it('empty: from-netdev delivers as it always did', () => {
    const r = run(fromNetdev, udpTo(ep.ip, 42000, TAKEN_PORT), ep.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({ endpointId: ep.info.endpointId, dstIdentity: ep.info.identity, srcIdentity: 2, ctStatus: CtStatus.new });
    expect(ctEntry(42000, TAKEN_PORT)).toBeDefined();
  });

  it('filled: the pre program sees the packet first, before conntrack, and takes what is its own', () => {
    const forwarded = metricPackets(maps.metrics, DropReason.forwarded, Direction.ingress);
    const r = withPre(() => run(fromNetdev, udpTo(ep.ip, 42001, TAKEN_PORT), ep.info.hostIfindex));
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(ctEntry(42001, TAKEN_PORT)).toBeUndefined();
    expect(metricPackets(maps.metrics, DropReason.forwarded, Direction.ingress)).toBe(forwarded);
  });

  it('filled: what the pre program hands back runs through the whole base program', () => {
    const forwarded = metricPackets(maps.metrics, DropReason.forwarded, Direction.ingress);
    const sent = udpTo(ep.ip, 42002, 53);
    const r = withPre(() => run(fromNetdev, sent, ep.info.hostIfindex));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({ endpointId: ep.info.endpointId, dstIdentity: ep.info.identity, srcIdentity: 2, ctStatus: CtStatus.new, attachPoint: AttachPointIndex['to-container'] });
    expect(parsePacket(r.data as Buffer)).toMatchObject({ eth: { dst: ep.info.mac, src: ep.info.hostMac }, ipv4: { ttl: 63, checksumOk: true } });
    expect(ctEntry(42002, 53)).toBeDefined();
    expect(metricPackets(maps.metrics, DropReason.forwarded, Direction.ingress)).toBe(forwarded + 1);
    // For the node: to its stack, untouched.
    const forNode = udpTo(NODE_IP, 42003, 53);
    const h = withPre(() => run(fromNetdev, forNode, ep.info.hostIfindex));
    expect(h.retval).toBe(TC_ACT.OK);
    expect(h.data).toEqual(forNode);
  });

  it('main is the base without the hook', () => {
    const r = withPre(() => run(dp.host.program('cil_from_netdev_main'), udpTo(ep.ip, 42004, TAKEN_PORT), ep.info.hostIfindex));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
  });

  it('without main (an older loader), what the pre program hands back goes to the stack untouched', () => {
    slots().clear(MAIN);
    try {
      const sent = udpTo(ep.ip, 42005, 53);
      const r = withPre(() => run(fromNetdev, sent, ep.info.hostIfindex));
      expect(r.retval).toBe(TC_ACT.OK);
      expect(r.data).toEqual(sent);
      expect(ctEntry(42005, 53)).toBeUndefined();
    } finally {
      slots().set(MAIN, dp.host.program('cil_from_netdev_main'));
    }
  });
});
