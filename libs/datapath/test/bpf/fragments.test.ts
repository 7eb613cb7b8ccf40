// IPv4 fragments (bpf/lib/fragments.h): a datagram's first fragment leaves its ports for the
// others, so they get the same conntrack entry, policy port and NAT; a later fragment whose
// first was not seen is dropped. Fragments made here the way a sender's kernel cuts a datagram.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfMap, BpfProgram } from '@cilia/bpf';
import { checksum, ipv4Bytes, packet, parsePacket, TC_ACT } from '@cilia/bpf/testing';
import { ReservedIdentity } from '@cilia/core';
import { CtStatus, Direction, DropReason, Ipv4FragKey, Ipv4FragL4 } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

const NODE_IP = '192.168.78.1';
const NODE_IP_HOST_ORDER = 0xc0a84e01;

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let frags: BpfMap<{ saddr: string; daddr: string; id: number; proto: number }, { sport: number; dport: number; icmpType: number }>;
let fromContainer: BpfProgram;
let toNetdev: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let b: ReturnType<typeof testEndpoint>;
let netdev: number;

beforeAll(() => {
  links = dummyLinks(3);
  try {
    dp = loadDatapath({ SNAT_IPV4: NODE_IP_HOST_ORDER, NAT_PORT_MIN: 63000, NAT_PORT_MAX: 63007 });
  } catch (err) {
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  frags = dp.lxc.map('cilia_ipv4_frags', { key: Ipv4FragKey, value: Ipv4FragL4 });
  fromContainer = dp.lxc.program('cil_from_container');
  toNetdev = dp.host.program('cil_to_netdev');
  const [ifA = 0, ifB = 0, ifNet = 0] = links.ifindexes;
  netdev = ifNet;
  a = testEndpoint('10.208.0.10', 51, ifA, 5001);
  b = testEndpoint('10.208.0.20', 52, ifB, 5002);
  maps.endpoints.update(a.ip, a.info);
  maps.endpoints.update(b.ip, b.info);
  maps.ipcache.update(`${NODE_IP}/32`, { identity: ReservedIdentity.host, tunnelEndpoint: '0.0.0.0', flags: 0 });
  maps.ipcache.update('10.208.0.0/16', { identity: 5000, tunnelEndpoint: '0.0.0.0', flags: 0 });
});
afterAll(() => {
  dp?.dispose();
  links?.remove();
});

const IP = 14;

/** `frame` cut into two fragments after `at` bytes of its IPv4 payload (a multiple of 8), headers fixed up. */
function fragment(frame: Buffer, at: number): [Buffer, Buffer] {
  const ihl = (frame[IP]! & 0x0f) * 4;
  const head = frame.subarray(0, IP + ihl);
  const payload = frame.subarray(IP + ihl);
  const piece = (part: Buffer, offset: number, more: boolean): Buffer => {
    const f = Buffer.concat([head, part]);
    f.writeUInt16BE(ihl + part.length, IP + 2);
    f.writeUInt16BE((more ? 0x2000 : 0) | (offset / 8), IP + 6);
    f.writeUInt16BE(0, IP + 10);
    f.writeUInt16BE(checksum(f.subarray(IP, IP + ihl)), IP + 10);
    return f;
  };
  return [piece(payload.subarray(0, at), 0, true), piece(payload.subarray(at), at, false)];
}

const datagram = (src: string, dst: string, id: number, sport: number, dport: number): Buffer =>
  packet().eth({ src: a.info.mac, dst: a.info.hostMac }).ipv4({ src, dst, id }).udp({ sport, dport }).payload(Buffer.alloc(200, 0x5a)).build();

const ipPayload = (frame: Buffer): Buffer => frame.subarray(IP + (frame[IP]! & 0x0f) * 4);

describe('IPv4 fragments', () => {
  it('delivers both fragments of a datagram to a local endpoint: the later one gets the first one’s ports and conntrack entry', () => {
    const [first, later] = fragment(datagram(a.ip, b.ip, 0x1234, 5353, 53), 48);
    const r1 = run(fromContainer, first, a.info.hostIfindex);
    expect(r1.retval).toBe(TC_ACT.REDIRECT);
    expect(r1.context).toMatchObject({ targetIfindex: b.info.hostIfindex, ctStatus: CtStatus.new });
    expect(frags.lookup({ saddr: a.ip, daddr: b.ip, id: 0x1234, proto: 17 })).toMatchObject({ sport: 5353, dport: 53 });

    const r2 = run(fromContainer, later, a.info.hostIfindex);
    expect(r2.retval).toBe(TC_ACT.REDIRECT);
    expect(r2.context).toMatchObject({ targetIfindex: b.info.hostIfindex, ctStatus: CtStatus.established });
    const out = parsePacket(r2.data as Buffer);
    expect(out.ipv4).toMatchObject({ src: a.ip, dst: b.ip, ttl: 63, checksumOk: true });
    // No L4 header in it: its bytes go through untouched.
    expect(ipPayload(r2.data as Buffer)).toEqual(ipPayload(later));
  });

  it('drops a later fragment whose first fragment was not seen, as a fragment drop', () => {
    const dropped = metricPackets(maps.metrics, DropReason.fragment, Direction.egress);
    const [, orphan] = fragment(datagram(a.ip, b.ip, 0x4321, 5353, 53), 48);
    expect(run(fromContainer, orphan, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.fragment, Direction.egress)).toBe(dropped + 1);
  });

  it('masquerades every fragment: the first gets the node address and a NAT port, the later only the address; the datagram’s checksum holds', () => {
    const whole = datagram(a.ip, '1.1.1.1', 0x5555, 40000, 5000);
    const [first, later] = fragment(whole, 64);
    for (const f of [first, later]) expect(run(fromContainer, f, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
    const sent = [first, later].map((f) => {
      const r = run(toNetdev, f, netdev);
      expect(r.retval).toBe(TC_ACT.OK);
      return r.data as Buffer;
    });
    for (const f of sent) expect(parsePacket(f).ipv4).toMatchObject({ src: NODE_IP, dst: '1.1.1.1', checksumOk: true });
    // Reassembled as the receiver will: the UDP header (the first's) and checksum cover it all.
    const udp = Buffer.concat(sent.map(ipPayload));
    const natPort = udp.readUInt16BE(0);
    expect(natPort).toBeGreaterThanOrEqual(63000);
    expect(natPort).toBeLessThanOrEqual(63007);
    expect(udp.readUInt16BE(2)).toBe(5000);
    expect(udp.subarray(8)).toEqual(ipPayload(whole).subarray(8));
    const pseudo = Buffer.concat([ipv4Bytes(NODE_IP), ipv4Bytes('1.1.1.1'), Buffer.from([0, 17, udp.length >> 8, udp.length & 0xff])]);
    expect(checksum(Buffer.concat([pseudo, udp]))).toBe(0);
  });
});
