// Local-delivery decisions of the endpoint programs (bpf/lxc.c): where a packet goes, what the
// context says about it, and how the frame is rewritten for a redirect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfProgram } from '@cilia/bpf';
import { packet, parsePacket, TC_ACT } from '@cilia/bpf/testing';
import { ReservedIdentity } from '@cilia/core';
import { CTX_FLAGS, CtStatus, Direction, DropReason, slotIndex } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let fromContainer: BpfProgram;
let toContainer: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let b: ReturnType<typeof testEndpoint>;
const NODE_IP = '192.168.77.1';

beforeAll(() => {
  links = dummyLinks(2);
  try {
    dp = loadDatapath();
  } catch (err) {
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  fromContainer = dp.lxc.program('cil_from_container');
  toContainer = dp.lxc.program('cil_to_container');
  const [ifA = 0, ifB = 0] = links.ifindexes;
  a = testEndpoint('10.201.0.10', 21, ifA, 2001);
  b = testEndpoint('10.201.0.20', 22, ifB, 2002);
  maps.endpoints.update(a.ip, a.info);
  maps.endpoints.update(b.ip, b.info);
  maps.ipcache.update(`${NODE_IP}/32`, { identity: ReservedIdentity.host, tunnelEndpoint: '0.0.0.0', flags: 0 });
  maps.ipcache.update('10.99.0.0/16', { identity: 5555, tunnelEndpoint: '0.0.0.0', flags: 0 });
});
afterAll(() => {
  dp?.dispose();
  links?.remove();
});

const fromA = (dst: string, sport = 41000): Buffer =>
  packet()
    .eth({ src: a.info.mac, dst: a.info.hostMac })
    .ipv4({ src: a.ip, dst })
    .tcp({ sport, dport: 8080 })
    .payload('hello')
    .build();

describe('from-container (tc ingress of the host-side veth)', () => {
  it('redirects to a local endpoint: peer of its host-side veth, MACs as its gateway sends them', () => {
    const forwarded = metricPackets(maps.metrics, DropReason.forwarded, Direction.egress);
    const r = run(fromContainer, fromA(b.ip), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context).toMatchObject({
      targetIfindex: b.info.hostIfindex,
      endpointId: b.info.endpointId, // now in the destination's to-container pipeline
      srcIdentity: a.info.identity,
      dstIdentity: b.info.identity,
      ctStatus: CtStatus.new,
    });
    expect(r.context.flags & (CTX_FLAGS.redirected | CTX_FLAGS.localDst)).toBe(CTX_FLAGS.redirected | CTX_FLAGS.localDst);
    const out = parsePacket(r.data as Buffer);
    expect(out.eth).toMatchObject({ dst: b.info.mac, src: b.info.hostMac });
    expect(out.ipv4).toMatchObject({ src: a.ip, dst: b.ip, ttl: 63, checksumOk: true }); // one router hop
    expect(out.tcp).toMatchObject({ sport: 41000, dport: 8080, checksumOk: true });
    expect(out.payload.toString()).toBe('hello');
    expect(metricPackets(maps.metrics, DropReason.forwarded, Direction.egress)).toBe(forwarded + 1);
  });

  it('drops a packet whose TTL runs out on the hop, as the destination\'s ingress', () => {
    const expired = metricPackets(maps.metrics, DropReason.ttlExceeded, Direction.ingress);
    const frame = packet().eth().ipv4({ src: a.ip, dst: b.ip, ttl: 1 }).udp({ sport: 1, dport: 2 }).build();
    expect(run(fromContainer, frame, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.ttlExceeded, Direction.ingress)).toBe(expired + 1);
    const two = packet().eth().ipv4({ src: a.ip, dst: b.ip, ttl: 2 }).udp({ sport: 1, dport: 2 }).build();
    const r = run(fromContainer, two, a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(parsePacket(r.data as Buffer).ipv4).toMatchObject({ ttl: 1, checksumOk: true });
  });

  it('still delivers when the to-container resume program is missing', () => {
    const slots = dp.lxc.programArray('cilia_tc_slots');
    const resume = slotIndex('to-container', 'resume');
    slots.clear(resume);
    try {
      const r = run(fromContainer, fromA(b.ip, 41001), a.info.hostIfindex);
      expect(r.retval).toBe(TC_ACT.REDIRECT);
      expect(r.context.endpointId).toBe(b.info.endpointId);
      expect(parsePacket(r.data as Buffer).eth.dst).toBe(b.info.mac);
    } finally {
      slots.set(resume, dp.lxc.program('cil_to_container_resume'));
    }
  });

  it('passes traffic for the node to the host stack, marked as host-bound', () => {
    const frame = fromA(NODE_IP);
    const r = run(fromContainer, frame, a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.context).toMatchObject({ targetIfindex: 0, dstIdentity: ReservedIdentity.host });
    expect(r.context.flags & CTX_FLAGS.hostDst).toBe(CTX_FLAGS.hostDst);
    expect(r.data).toEqual(frame);
  });

  it('passes unknown destinations to the stack as the world, untouched', () => {
    const frame = fromA('8.8.8.8');
    const r = run(fromContainer, frame, a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.context).toMatchObject({ targetIfindex: 0, dstIdentity: ReservedIdentity.world, flags: 0 });
    expect(r.data).toEqual(frame);
  });

  it('takes the destination identity from the longest ipcache prefix', () => {
    const r = run(fromContainer, fromA('10.99.3.4'), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.context.dstIdentity).toBe(5555);
  });

  it('lets ARP through', () => {
    const arp = packet().eth({ src: a.info.mac, dst: 'ff:ff:ff:ff:ff:ff' }).payload(Buffer.alloc(28)).build();
    expect(run(fromContainer, arp, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
  });

  it('drops a source address that is not the endpoint of this veth', () => {
    const spoofed = metricPackets(maps.metrics, DropReason.invalidSource, Direction.egress);
    // b's address from a's veth, and an address no endpoint has.
    const asB = packet().eth().ipv4({ src: b.ip, dst: '8.8.8.8' }).udp({ sport: 1, dport: 53 }).build();
    const unknown = packet().eth().ipv4({ src: '10.201.0.99', dst: '8.8.8.8' }).udp({ sport: 1, dport: 53 }).build();
    expect(run(fromContainer, asB, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(run(fromContainer, unknown, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.invalidSource, Direction.egress)).toBe(spoofed + 2);
  });
});

describe('to-container (tc egress of the host-side veth)', () => {
  it('lets the host stack deliver to the endpoint, tracking the connection', () => {
    const fromHost = packet()
      .eth({ src: b.info.hostMac, dst: b.info.mac })
      .ipv4({ src: NODE_IP, dst: b.ip })
      .tcp({ sport: 50000, dport: 80 })
      .build();
    const r = run(toContainer, fromHost, b.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.context).toMatchObject({
      endpointId: b.info.endpointId,
      srcIdentity: ReservedIdentity.host,
      dstIdentity: b.info.identity,
      ctStatus: CtStatus.new,
      targetIfindex: 0,
    });
    expect(r.data).toEqual(fromHost);
    expect(maps.ct.lookup({ saddr: NODE_IP, daddr: b.ip, sport: 50000, dport: 80, proto: 6, flags: 0 })).toBeDefined();
    // b answers through from-container: the reply of that entry, back to the stack.
    const reply = packet().eth().ipv4({ src: b.ip, dst: NODE_IP }).tcp({ sport: 80, dport: 50000, flags: 0x12 }).build();
    const back = run(fromContainer, reply, b.info.hostIfindex);
    expect(back.retval).toBe(TC_ACT.OK);
    expect(back.context.ctStatus).toBe(CtStatus.reply);
  });

  it('passes packets for addresses that are no endpoint', () => {
    const frame = packet().eth().ipv4({ src: NODE_IP, dst: '10.201.0.250' }).udp({ sport: 1, dport: 2 }).build();
    const r = run(toContainer, frame, b.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.context.endpointId).toBe(0);
  });
});
