// Drops with reason codes: counted per reason and direction in cilia_metrics, and reported as
// records in the cilia_events ring buffer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingBufferConsumer, type BpfProgram } from '@cilia/bpf';
import { packet, TC_ACT } from '@cilia/bpf/testing';
import { AttachPointIndex, Direction, DropReason, EventType, PacketEvent, TracePoint, type PacketEventRecord } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let fromContainer: BpfProgram;
let toContainer: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let events: PacketEventRecord[];
let consumer: RingBufferConsumer;

beforeAll(() => {
  links = dummyLinks(1);
  try {
    dp = loadDatapath();
  } catch (err) {
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  fromContainer = dp.lxc.program('cil_from_container');
  toContainer = dp.lxc.program('cil_to_container');
  a = testEndpoint('10.203.0.10', 41, links.ifindexes[0] ?? 0, 4001);
  maps.endpoints.update(a.ip, a.info);
  events = [];
  consumer = new RingBufferConsumer(dp.lxc.map('cilia_events'), {
    onBatch: (batch) => events.push(...batch.decode(PacketEvent)),
  });
});
afterAll(() => {
  consumer?.close();
  dp?.dispose();
  links?.remove();
});

/** Waits until an event matching `pred` has been consumed. */
async function eventWhere(pred: (e: PacketEventRecord) => boolean): Promise<PacketEventRecord> {
  for (let i = 0; i < 100; i++) {
    const hit = events.find(pred);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no such event among ${events.length}: ${JSON.stringify(events.slice(-5))}`);
}

/** A copy of an IPv4 frame with another header length (in 32-bit words). */
const withIhl = (frame: Buffer, ihl: number): Buffer => {
  const copy = Buffer.from(frame);
  copy[14] = 0x40 | ihl;
  return copy;
};

describe('drops are counted by reason and reported', () => {
  // (The kernel refuses to test-run an IPv4 frame shorter than an IPv4 header, so "short" here
  // is a header whose IHL claims options the frame does not have.)
  it('a frame too short for its IPv4 header: invalid packet', async () => {
    const before = metricPackets(maps.metrics, DropReason.invalidPacket, Direction.egress);
    const short = withIhl(packet().eth().ipv4({ src: a.ip, dst: '8.8.8.8' }).udp({ sport: 1, dport: 2 }).build(), 15);
    expect(run(fromContainer, short, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.invalidPacket, Direction.egress)).toBe(before + 1);
    const ev = await eventWhere((e) => e.hdr.type === EventType.drop && e.hdr.subtype === DropReason.invalidPacket);
    expect(ev.hdr).toMatchObject({ source: AttachPointIndex['from-container'], ifindex: a.info.hostIfindex });
    expect(ev.len).toBe(short.length);
  });

  it('a truncated TCP header, an IHL below 5, a fragment without its first, IPv6', () => {
    const count = (reason: number): number => metricPackets(maps.metrics, reason, Direction.egress);
    const invalid = count(DropReason.invalidPacket);
    const frag = count(DropReason.fragment);
    const l3 = count(DropReason.unsupportedL3);

    const tcp = packet().eth().ipv4({ src: a.ip, dst: '8.8.8.8' }).tcp({ sport: 1, dport: 2 }).build();
    expect(run(fromContainer, Buffer.from(tcp.subarray(0, 34 + 10)), a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(run(fromContainer, withIhl(tcp, 4), a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    const fragment = Buffer.from(packet().eth().ipv4({ src: a.ip, dst: '8.8.8.8', id: 7 }).udp({ sport: 1, dport: 2 }).build());
    fragment.writeUInt16BE(0x0003, 14 + 6); // a later fragment (offset 24 bytes) whose first was never seen
    expect(run(fromContainer, fragment, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    const v6 = packet().eth().ipv6({ src: 'fd00::1', dst: 'fd00::2' }).udp({ sport: 1, dport: 2 }).build();
    expect(run(fromContainer, v6, a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);

    expect(count(DropReason.invalidPacket)).toBe(invalid + 2);
    expect(count(DropReason.fragment)).toBe(frag + 1);
    expect(count(DropReason.unsupportedL3)).toBe(l3 + 1);
  });

  it('counts to-container drops as ingress', () => {
    const before = metricPackets(maps.metrics, DropReason.invalidPacket, Direction.ingress);
    const frame = packet().eth().ipv4({ src: '8.8.8.8', dst: a.ip }).udp({ sport: 1, dport: 2 }).build();
    expect(run(toContainer, withIhl(frame, 9), a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.invalidPacket, Direction.ingress)).toBe(before + 1);
  });

  it('traces the first packet of a connection with its tuple and identities', async () => {
    const frame = packet().eth().ipv4({ src: a.ip, dst: '8.8.8.8' }).udp({ sport: 7777, dport: 53 }).build();
    expect(run(fromContainer, frame, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
    expect(run(fromContainer, frame, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
    const ev = await eventWhere((e) => e.hdr.type === EventType.trace && e.sport === 7777);
    expect(ev).toMatchObject({
      saddr: a.ip,
      daddr: '8.8.8.8',
      dport: 53,
      proto: 17,
      endpointId: a.info.endpointId,
      srcIdentity: a.info.identity,
      dstIdentity: 2,
    });
    expect(ev.hdr.subtype).toBe(TracePoint.toStack);
    await new Promise((r) => setTimeout(r, 50));
    expect(events.filter((e) => e.hdr.type === EventType.trace && e.sport === 7777)).toHaveLength(1);
  });
});
