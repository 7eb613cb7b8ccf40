// Monitor aggregation (MONITOR_AGGREGATION, Cilium's levels): which forwarded packets of one TCP
// connection the datapath traces — every one at none; the first, SYN, FIN and RST at medium
// (plain data never); the first only at maximum. Each trace carries the packet's TCP flags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingBufferConsumer } from '@cilia/bpf';
import { packet, TC_ACT } from '@cilia/bpf/testing';
import { EventType, MonitorAggregation, PacketEvent, type PacketEventRecord } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, run, testEndpoint } from './fixtures.js';
import { loadDatapath } from './objects.js';

let links: ReturnType<typeof dummyLinks>;
beforeAll(() => {
  links = dummyLinks(1);
});
afterAll(() => links?.remove());

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

/** The TCP flags of each trace the connection's packets made at `level`. */
async function tracedFlags(level: keyof typeof MonitorAggregation, sport: number): Promise<number[]> {
  const dp = loadDatapath({}, undefined, { MONITOR_AGGREGATION: MonitorAggregation[level] });
  const events: PacketEventRecord[] = [];
  const consumer = new RingBufferConsumer(dp.lxc.map('cilia_events'), { onBatch: (b) => events.push(...b.decode(PacketEvent)) });
  try {
    const a = testEndpoint('10.203.1.10', 51, links.ifindexes[0] ?? 0, 5001);
    datapathMaps(dp).endpoints.update(a.ip, a.info);
    const from = dp.lxc.program('cil_from_container');
    for (const flags of [SYN, ACK, PSH | ACK, ACK, FIN | ACK, RST]) {
      const frame = packet().eth().ipv4({ src: a.ip, dst: '8.8.8.8' }).tcp({ sport, dport: 443, flags }).build();
      expect(run(from, frame, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
    }
    consumer.consume();
    return events.filter((e) => e.hdr.type === EventType.trace && e.sport === sport).map((e) => e.tcpFlags);
  } finally {
    consumer.close();
    dp.dispose();
  }
}

describe('monitor aggregation', () => {
  it('none: every forwarded packet, with its flags', async () => {
    expect(await tracedFlags('none', 40001)).toEqual([SYN, ACK, PSH | ACK, ACK, FIN | ACK, RST]);
  });

  it('medium (the default): the first packet and the SYN, FIN and RST flag changes, never plain data', async () => {
    expect(await tracedFlags('medium', 40002)).toEqual([SYN, FIN | ACK, RST]);
  });

  it('maximum: the first packet only', async () => {
    expect(await tracedFlags('maximum', 40003)).toEqual([SYN]);
  });
});
