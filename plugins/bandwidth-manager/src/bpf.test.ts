// The bandwidth programs through BPF_PROG_TEST_RUN, installed as the agent installs them: the
// base lxc.o and host.o with their resume programs, this plugin's objects sharing their pinned
// maps, EDT in the to-netdev shaping slot and the ingress limit in the to-container one. Packets
// go through host.o's cil_to_netdev (a pod's packet leaving the node) and lxc.o's
// cil_to_container (the host sending to a pod); the verdict, skb->tstamp and the maps come out.
import { fileURLToPath } from 'node:url';
import { compareLayout, type BpfMap, type BpfObject, type BpfProgram, type PerCpuMap, type ProgramArray } from '@cilia/bpf';
import { compileBpf, packet, TC_ACT, TestNetwork, type TestLink } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath, type Datapath } from '@cilia/datapath/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BANDWIDTH_OBJECTS, BANDWIDTH_PROGRAMS } from './index.js';

const x = (process.pid % 200) + 20;
const POD = `10.231.${x}.10`;
const OTHER_POD = `10.231.${x}.11`;
const OUTSIDE = '198.51.100.7';
const NODE = `10.231.${x}.1`;
const POD_ID = 41;
const OTHER_ID = 42;
const NS = 1_000_000_000;

const net = new TestNetwork();
let dp: Datapath;
let egressPath: string;
let ingressPath: string;
let egress: BpfObject;
let ingress: BpfObject;
let slots: ProgramArray;
let toNetdev: BpfProgram;
let toContainer: BpfProgram;
let netdev: TestLink;
let podLink: TestLink;
let bandwidth: BpfMap<{ endpointId: number; direction: number }, m.BandwidthEntry>;
let metrics: PerCpuMap<{ reason: number; dir: number }, { packets: number; bytes: number }>;

/** `struct __sk_buff` (linux/bpf.h): the fields these tests set and read. */
const SKB = { size: 192, ifindex: 40, tstamp: 152, wireLen: 160 } as const;

function skb(ifindex: number, fields: { tstamp?: bigint; wireLen?: number } = {}): Buffer {
  const ctx = Buffer.alloc(SKB.size);
  ctx.writeUInt32LE(ifindex, SKB.ifindex);
  ctx.writeBigUInt64LE(fields.tstamp ?? 0n, SKB.tstamp);
  ctx.writeUInt32LE(fields.wireLen ?? 0, SKB.wireLen);
  return ctx;
}

/** Runs `prog` on `frame`; returns the verdict and the skb->tstamp it left. */
function run(prog: BpfProgram, frame: Buffer, ifindex: number, fields: { tstamp?: bigint; wireLen?: number } = {}): { retval: number; tstamp: bigint } {
  const r = prog.testRun({ data: frame, ctx: skb(ifindex, fields) });
  return { retval: r.retval, tstamp: (r.ctx as Buffer).readBigUInt64LE(SKB.tstamp) };
}

const now = (): bigint => process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
const fromPod = (src = POD, sport = 40000): Buffer => packet().eth().ipv4({ src, dst: OUTSIDE }).udp({ sport, dport: 9 }).payload(Buffer.alloc(1458)).build();
const toPod = (dst = POD): Buffer => packet().eth().ipv4({ src: NODE, dst }).udp({ sport: 9, dport: 40000 }).payload(Buffer.alloc(1458)).build();
const drops = (reason: number, dir: number): number => (metrics.lookup({ reason, dir }) ?? []).reduce((n, v) => n + v.packets, 0);

function limit(endpointId: number, direction: 'egress' | 'ingress', bitsPerSecond: number, horizonNs: number): void {
  bandwidth.update({ endpointId, direction: m.Direction[direction] }, { rate: bitsPerSecond / 8, horizonNs, tLast: 0n, drops: 0 });
}

beforeAll(() => {
  try {
    netdev = net.link();
    podLink = net.link();
    const otherLink = net.link();
    dp = loadDatapath();
    // Built from this package's bpf/ as its build does; loaded against the base's pinned maps.
    const srcDir = new URL('../bpf/', import.meta.url);
    egressPath = compileBpf('bandwidth_egress', { srcDir });
    ingressPath = compileBpf('bandwidth_ingress', { srcDir });
    egress = dp.load(egressPath);
    ingress = dp.load(ingressPath);
    slots = egress.programArray('cilia_tc_slots');
    slots.set(m.slotIndex('to-netdev', 'shaping'), egress.program(BANDWIDTH_PROGRAMS.egress));
    slots.set(m.slotIndex('to-container', 'shaping'), ingress.program(BANDWIDTH_PROGRAMS.ingress));
    const endpoints = dp.lxc.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo });
    const entry = (id: number, link: TestLink) => ({ ifindex: 2, hostIfindex: link.ifindex, identity: 5000 + id, endpointId: id, flags: 0, mac: '02:00:00:00:01:01', hostMac: link.mac });
    endpoints.update(POD, entry(POD_ID, podLink));
    endpoints.update(OTHER_POD, entry(OTHER_ID, otherLink));
    bandwidth = egress.map('cilia_bandwidth', { key: m.BandwidthKey, value: m.BandwidthValue });
    metrics = dp.lxc.perCpuMap('cilia_metrics', { key: m.MetricsKey, value: m.MetricsValue });
    toNetdev = dp.host.program('cil_to_netdev');
    toContainer = dp.lxc.program('cil_to_container');
  } catch (err) {
    dp?.dispose();
    net.remove();
    throw err;
  }
});
afterAll(() => {
  dp?.dispose();
  net.remove();
});
// Each test starts without limits, also after one that failed half-way.
afterEach(() => {
  for (const key of bandwidth?.keys() ?? []) bandwidth.delete(key);
});

describe('egress EDT (to-netdev shaping slot)', () => {
  it('the objects the plugin declares are the ones built here, and cilia_bandwidth matches its TS codec', () => {
    expect(fileURLToPath(BANDWIDTH_OBJECTS.egress)).toMatch(/dist\/bpf\/bandwidth_egress\.o$/);
    expect(fileURLToPath(BANDWIDTH_OBJECTS.ingress)).toMatch(/dist\/bpf\/bandwidth_ingress\.o$/);
    for (const path of [egressPath, ingressPath]) {
      expect(compareLayout(m.BandwidthKey, path)).toEqual([]);
      expect(compareLayout(m.BandwidthValue, path)).toEqual([]);
    }
  });

  it('spaces departure times by wire length / rate (within 1 %), GSO packets by their whole wire length', () => {
    // 1 Mbit/s: a 1500-byte packet every 12 ms, far more than a test run takes (the clock keeps ahead).
    const rate = 1e6;
    limit(POD_ID, 'egress', rate, 2 * NS);
    const frame = fromPod();
    const before = now();
    const stamps = Array.from({ length: 20 }, () => run(toNetdev, frame, netdev.ifindex));
    expect(stamps.every((s) => s.retval === TC_ACT.OK)).toBe(true);
    // The first leaves at once (no departure time written); the rest one wire time apart.
    expect(stamps[0]!.tstamp).toBe(0n);
    const wire = (frame.length * 8 * NS) / rate;
    const gaps = stamps.slice(2).map((s, i) => Number(s.tstamp - stamps[i + 1]!.tstamp));
    for (const gap of gaps) expect(Math.abs(gap - wire) / wire).toBeLessThan(0.01);
    expect(stamps[1]!.tstamp).toBeGreaterThan(before);
    // A GSO packet counts every segment's headers (skb->wire_len), not just skb->len.
    const last = stamps.at(-1)!.tstamp;
    const wireLen = 43 * 1514; // 43 segments of a 64 KiB GSO packet (the test run's ceiling)
    const gso = run(toNetdev, frame, netdev.ifindex, { wireLen });
    expect(Math.abs(Number(gso.tstamp - last) - (wireLen * 8 * NS) / rate) / ((wireLen * 8 * NS) / rate)).toBeLessThan(0.01);
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });

  it('keeps a later departure time the sender set (its own pacing), and schedules from it', () => {
    limit(POD_ID, 'egress', 1e9, 2 * NS);
    const later = now() + 50_000_000n;
    const r = run(toNetdev, fromPod(), netdev.ifindex, { tstamp: later });
    expect(r.tstamp).toBe(later);
    const next = run(toNetdev, fromPod(), netdev.ifindex);
    expect(next.tstamp - later).toBe(BigInt(Math.floor((fromPod().length * NS) / (1e9 / 8))));
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });

  it('drops packets beyond the horizon as EDT_HORIZON, counted per endpoint and in the metrics, the clock unmoved', () => {
    // 100 kbit/s: 120 ms a packet; a 500 ms horizon holds four behind the first.
    limit(POD_ID, 'egress', 100e3, 500_000_000);
    const counted = drops(m.DropReason.edtHorizon, m.Direction.egress);
    const verdicts = Array.from({ length: 8 }, () => run(toNetdev, fromPod(), netdev.ifindex).retval);
    expect(verdicts.slice(0, 5)).toEqual(Array(5).fill(TC_ACT.OK));
    expect(verdicts.slice(5)).toEqual(Array(3).fill(TC_ACT.SHOT));
    const entry = bandwidth.lookup({ endpointId: POD_ID, direction: m.Direction.egress })!;
    expect(entry.drops).toBe(3);
    expect(drops(m.DropReason.edtHorizon, m.Direction.egress)).toBe(counted + 3);
    // The last departure stays where the fifth packet put it: within the horizon.
    expect(Number(entry.tLast - now())).toBeLessThanOrEqual(500_000_000);
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });

  it('a rate change takes effect on the next packet', () => {
    limit(POD_ID, 'egress', 10e6, 2 * NS);
    const frame = fromPod();
    const a = run(toNetdev, frame, netdev.ifindex);
    const b = run(toNetdev, frame, netdev.ifindex);
    expect(a.tstamp).toBe(0n);
    const entry = bandwidth.lookup({ endpointId: POD_ID, direction: m.Direction.egress })!;
    bandwidth.update({ endpointId: POD_ID, direction: m.Direction.egress }, { ...entry, rate: 100e6 / 8 });
    const c = run(toNetdev, frame, netdev.ifindex);
    const wire100 = (frame.length * 8 * NS) / 100e6;
    expect(Math.abs(Number(c.tstamp - b.tstamp) - wire100) / wire100).toBeLessThan(0.01);
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });

  it('leaves endpoints without a limit, and the host\'s own packets, untouched', () => {
    limit(POD_ID, 'egress', 1e6, 50_000_000);
    for (let i = 0; i < 10; i++) {
      const r = run(toNetdev, fromPod(OTHER_POD, 41000 + i), netdev.ifindex);
      expect(r).toEqual({ retval: TC_ACT.OK, tstamp: 0n });
    }
    const host = packet().eth().ipv4({ src: NODE, dst: OUTSIDE }).udp({ sport: 1, dport: 9 }).payload(Buffer.alloc(1458)).build();
    for (let i = 0; i < 10; i++) expect(run(toNetdev, host, netdev.ifindex)).toEqual({ retval: TC_ACT.OK, tstamp: 0n });
    expect(bandwidth.lookup({ endpointId: OTHER_ID, direction: m.Direction.egress })).toBeUndefined();
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });
});

describe('ingress limit (to-container shaping slot)', () => {
  it('lets the burst through at once, drops above it as BANDWIDTH_LIMIT, and refills at the rate', async () => {
    // 1 Mbit/s with a 120 ms burst: a 1500-byte packet is 12 ms, so eleven pass back to back
    // (the first on an idle clock, ten within the burst) — plus one per 12 ms the runs take.
    const wireMs = (1500 * 8 * 1000) / 1e6;
    limit(POD_ID, 'ingress', 1e6, 120_000_000);
    const counted = drops(m.DropReason.bandwidthLimit, m.Direction.ingress);
    const frame = toPod();
    const burst = (n: number) => {
      const start = now();
      const verdicts = Array.from({ length: n }, () => run(toContainer, frame, podLink.ifindex));
      return { verdicts, tookMs: Number(now() - start) / 1e6 };
    };
    const first = burst(16);
    // Never delayed: what passes leaves now.
    expect(first.verdicts.every((v) => v.tstamp === 0n)).toBe(true);
    const passed = first.verdicts.filter((v) => v.retval === TC_ACT.OK).length;
    expect(passed).toBeGreaterThanOrEqual(11);
    expect(passed).toBeLessThanOrEqual(11 + Math.ceil(first.tookMs / wireMs));
    expect(first.verdicts.slice(0, 11).every((v) => v.retval === TC_ACT.OK)).toBe(true);
    // Taken, not shot: a sender on this node is not told (see bandwidth_ingress.c).
    expect(first.verdicts.slice(passed).every((v) => v.retval === TC_ACT.STOLEN)).toBe(true);
    expect(drops(m.DropReason.bandwidthLimit, m.Direction.ingress)).toBe(counted + 16 - passed);
    expect(bandwidth.lookup({ endpointId: POD_ID, direction: m.Direction.ingress })!.drops).toBe(16 - passed);
    // 60 ms later five packets' worth has come back.
    const pause = now();
    await new Promise((r) => setTimeout(r, 60));
    const second = burst(12);
    const again = second.verdicts.filter((v) => v.retval === TC_ACT.OK).length;
    const refilledMs = Number(now() - pause) / 1e6;
    expect(again).toBeGreaterThanOrEqual(Math.floor(60 / wireMs));
    expect(again).toBeLessThanOrEqual(Math.ceil(refilledMs / wireMs) + 1);
  });

  it('an endpoint without an ingress limit, or with only an egress one, is not policed', () => {
    limit(POD_ID, 'egress', 1e3, 1);
    for (let i = 0; i < 50; i++) expect(run(toContainer, toPod(), podLink.ifindex).retval).toBe(TC_ACT.OK);
    bandwidth.delete({ endpointId: POD_ID, direction: m.Direction.egress });
  });
});
