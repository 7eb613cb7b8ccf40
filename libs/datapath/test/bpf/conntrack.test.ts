// Conntrack state transitions in cil_from_container (bpf/lib/conntrack.h), through
// BPF_PROG_TEST_RUN: a packet in, the verdict, the context the program left in skb->cb and
// the cilia_ct entry out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfProgram } from '@cilia/bpf';
import { packet, TCP_FLAGS, TC_ACT } from '@cilia/bpf/testing';
import { CtState, CtStatus, gcExpired, type CtKeyValue } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

const NS = 1_000_000_000n;
let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let fromContainer: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let b: ReturnType<typeof testEndpoint>;

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
  const [ifA = 0, ifB = 0] = links.ifindexes;
  a = testEndpoint('10.200.0.10', 11, ifA, 1001);
  b = testEndpoint('10.200.0.20', 12, ifB, 1002);
  maps.endpoints.update(a.ip, a.info);
  maps.endpoints.update(b.ip, b.info);
});
afterAll(() => {
  dp?.dispose();
  links?.remove();
});

const tcp = (from: typeof a, to: typeof a, sport: number, dport: number, flags: number): Buffer =>
  packet()
    .eth({ src: from.info.mac, dst: from.info.hostMac })
    .ipv4({ src: from.ip, dst: to.ip })
    .tcp({ sport, dport, flags })
    .payload('x')
    .build();

/** Sends a frame from endpoint `from` (on its host-side veth's ingress). */
const send = (from: typeof a, frame: Buffer): ReturnType<typeof run> => run(fromContainer, frame, from.info.hostIfindex);

const entry = (key: CtKeyValue): ReturnType<typeof maps.ct.lookup> => maps.ct.lookup(key);

/** Remaining lifetime of an entry in whole seconds. */
const lifetime = (key: CtKeyValue): number => {
  const e = entry(key);
  if (!e) throw new Error(`no conntrack entry for ${JSON.stringify(key)}`);
  return Number((e.expiresNs - process.hrtime.bigint()) / NS);
};

describe('conntrack (TCP)', () => {
  const key: CtKeyValue = { saddr: '10.200.0.10', daddr: '10.200.0.20', sport: 40000, dport: 80, proto: 6, flags: 0 };

  it('follows SYN → SYN-ACK → ACK → FIN/FIN, telling original from reply', () => {
    let r = send(a, tcp(a, b, 40000, 80, TCP_FLAGS.SYN));
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.ctStatus).toBe(CtStatus.new);
    expect(entry(key)).toMatchObject({ state: CtState.synSent, packetsOrig: 1, packetsReply: 0, srcIdentity: 1001 });
    expect(lifetime(key)).toBeGreaterThanOrEqual(58);
    expect(lifetime(key)).toBeLessThanOrEqual(60);

    // The reply comes from b's veth, with the tuple reversed: found as the reply of a's entry.
    r = send(b, tcp(b, a, 80, 40000, TCP_FLAGS.SYN | TCP_FLAGS.ACK));
    expect(r.context.ctStatus).toBe(CtStatus.reply);
    expect(entry(key)).toMatchObject({ state: CtState.synRecv, packetsReply: 1 });
    expect(maps.ct.lookup({ ...key, saddr: key.daddr, daddr: key.saddr, sport: 80, dport: 40000 })).toBeUndefined();

    r = send(a, tcp(a, b, 40000, 80, TCP_FLAGS.ACK));
    expect(r.context.ctStatus).toBe(CtStatus.established);
    expect(entry(key)).toMatchObject({ state: CtState.established, packetsOrig: 2 });
    expect(lifetime(key)).toBeGreaterThan(21500);

    send(b, tcp(b, a, 80, 40000, TCP_FLAGS.ACK | TCP_FLAGS.PSH));
    expect(entry(key)).toMatchObject({ state: CtState.established, packetsReply: 2 });

    send(a, tcp(a, b, 40000, 80, TCP_FLAGS.FIN | TCP_FLAGS.ACK));
    expect(entry(key)).toMatchObject({ state: CtState.finWait, flags: 1 });
    send(b, tcp(b, a, 80, 40000, TCP_FLAGS.FIN | TCP_FLAGS.ACK));
    expect(entry(key)).toMatchObject({ state: CtState.closing, flags: 3 });
    expect(lifetime(key)).toBeLessThanOrEqual(10);

    // The port is reused: a new SYN on the closed tuple starts over.
    r = send(a, tcp(a, b, 40000, 80, TCP_FLAGS.SYN));
    expect(entry(key)).toMatchObject({ state: CtState.synSent, flags: 0 });
  });

  it('closes on RST from either side', () => {
    const k = { ...key, sport: 40001 };
    send(a, tcp(a, b, 40001, 80, TCP_FLAGS.SYN));
    send(b, tcp(b, a, 80, 40001, TCP_FLAGS.SYN | TCP_FLAGS.ACK));
    send(a, tcp(a, b, 40001, 80, TCP_FLAGS.ACK));
    expect(entry(k)?.state).toBe(CtState.established);
    const r = send(b, tcp(b, a, 80, 40001, TCP_FLAGS.RST));
    expect(r.context.ctStatus).toBe(CtStatus.reply);
    expect(entry(k)?.state).toBe(CtState.closed);
    expect(lifetime(k)).toBeLessThanOrEqual(10);
  });

  it('takes a connection first seen mid-stream as established', () => {
    const r = send(a, tcp(a, b, 40002, 80, TCP_FLAGS.ACK));
    expect(r.context.ctStatus).toBe(CtStatus.new);
    expect(entry({ ...key, sport: 40002 })?.state).toBe(CtState.established);
  });

  it('treats an expired entry as absent, and user-space GC deletes it', () => {
    const k = { ...key, sport: 40003 };
    send(a, tcp(a, b, 40003, 80, TCP_FLAGS.SYN));
    const e = entry(k);
    if (!e) throw new Error('no entry');
    maps.ct.update(k, { ...e, state: CtState.established, expiresNs: process.hrtime.bigint() - 1n });
    // The reply of a dead connection is not a reply: it opens its own entry.
    const r = send(b, tcp(b, a, 80, 40003, TCP_FLAGS.ACK));
    expect(r.context.ctStatus).toBe(CtStatus.new);
    expect(maps.ct.lookup({ ...k, saddr: k.daddr, daddr: k.saddr, sport: 80, dport: 40003 })?.state).toBe(
      CtState.established,
    );
    const before = [...maps.ct.keys()].length;
    expect(gcExpired(maps.ct)).toBe(1);
    expect(entry(k)).toBeUndefined();
    expect([...maps.ct.keys()].length).toBe(before - 1);
  });
});

describe('conntrack (UDP, ICMP)', () => {
  const udp = (from: typeof a, to: typeof a, sport: number, dport: number): Buffer =>
    packet().eth().ipv4({ src: from.ip, dst: to.ip }).udp({ sport, dport }).payload('q').build();

  it('UDP: unreplied until the reverse tuple answers', () => {
    const key: CtKeyValue = { saddr: a.ip, daddr: b.ip, sport: 5353, dport: 53, proto: 17, flags: 0 };
    expect(send(a, udp(a, b, 5353, 53)).context.ctStatus).toBe(CtStatus.new);
    expect(entry(key)).toMatchObject({ state: CtState.unreplied, packetsOrig: 1 });
    expect(lifetime(key)).toBeGreaterThanOrEqual(58);
    expect(send(a, udp(a, b, 5353, 53)).context.ctStatus).toBe(CtStatus.established);
    expect(entry(key)?.state).toBe(CtState.unreplied);
    expect(send(b, udp(b, a, 53, 5353)).context.ctStatus).toBe(CtStatus.reply);
    expect(entry(key)).toMatchObject({ state: CtState.established, packetsOrig: 2, packetsReply: 1 });
  });

  it('ICMP echo: request and reply share one entry keyed by the identifier', () => {
    const ping = (from: typeof a, to: typeof a, type: number): Buffer =>
      packet().eth().ipv4({ src: from.ip, dst: to.ip }).icmp({ type, id: 4242, seq: 1 }).build();
    const key: CtKeyValue = { saddr: a.ip, daddr: b.ip, sport: 4242, dport: 4242, proto: 1, flags: 0 };
    expect(send(a, ping(a, b, 8)).context.ctStatus).toBe(CtStatus.new);
    expect(entry(key)?.state).toBe(CtState.unreplied);
    expect(lifetime(key)).toBeLessThanOrEqual(30);
    expect(send(b, ping(b, a, 0)).context.ctStatus).toBe(CtStatus.reply);
    expect(entry(key)?.state).toBe(CtState.established);
  });

  it('does not track other ICMP messages', () => {
    const before = [...maps.ct.keys()].length;
    const unreachable = packet().eth().ipv4({ src: a.ip, dst: b.ip }).icmp({ type: 3, code: 1 }).build();
    const r = send(a, unreachable);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.ctStatus).toBe(CtStatus.untracked);
    expect([...maps.ct.keys()].length).toBe(before);
  });
});
