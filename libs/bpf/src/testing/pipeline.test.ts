// The BPF unit-test harness at work: crafted packets through bpf/tests/packet.c's pipeline
// via BPF_PROG_TEST_RUN, asserting verdict, output packet and map state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { u32, u64n } from '../codec.js';
import { DenyKey } from './fixtures.js';
import type { BpfMap, PerCpuMap } from '../map.js';
import type { BpfProgram } from '../object.js';
import { loadTestObject, packet, parsePacket, TC_ACT, type LoadedTestObject } from './index.js';

const STAT = { TCP: 0, UDP: 1, ICMP: 2, IPV6: 3, DROP: 4, OTHER: 5 } as const;

let loaded: LoadedTestObject;
let prog: BpfProgram;
let deny: BpfMap<{ saddr: string; dport: number; proto: number }, number>;
let stats: PerCpuMap<number, number>;

beforeAll(() => {
  // As a plugin would: sources by URL relative to the test.
  loaded = loadTestObject('packet', { srcDir: new URL('../../../../bpf/tests', import.meta.url) });
  prog = loaded.object.program('cls_pipeline');
  deny = loaded.object.map('deny', { key: DenyKey, value: u32 });
  stats = loaded.object.perCpuMap('stats', { key: u32, value: u64n });
});
afterAll(() => loaded?.dispose());

const stat = (s: number): number => stats.sum(s) ?? 0;

describe('packet pipeline (bpf/tests/packet.c)', () => {
  it('passes TCP with TTL decremented and a valid IPv4 checksum', () => {
    const before = stat(STAT.TCP);
    const frame = packet()
      .eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:0b' })
      .ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64 })
      .tcp({ sport: 40000, dport: 80 })
      .payload('GET /')
      .build();
    const r = prog.testRun({ data: frame });
    expect(r.retval).toBe(TC_ACT.OK);
    const out = parsePacket(r.data as Buffer);
    expect(out.ipv4).toMatchObject({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 63, checksumOk: true });
    expect(out.tcp).toMatchObject({ sport: 40000, dport: 80, checksumOk: true });
    expect(out.payload.toString()).toBe('GET /');
    expect(stat(STAT.TCP)).toBe(before + 1);
  });

  it('drops what a deny rule matches and counts it on the rule', () => {
    deny.update({ saddr: '192.168.1.5', dport: 53, proto: 17 }, 0);
    const denied = packet().eth().ipv4({ src: '192.168.1.5', dst: '10.0.0.2' }).udp({ sport: 5353, dport: 53 }).build();
    const otherPort = packet().eth().ipv4({ src: '192.168.1.5', dst: '10.0.0.2' }).udp({ sport: 5353, dport: 54 }).build();
    const drops = stat(STAT.DROP);
    expect(prog.testRun({ data: denied }).retval).toBe(TC_ACT.SHOT);
    expect(prog.testRun({ data: denied }).retval).toBe(TC_ACT.SHOT);
    expect(prog.testRun({ data: otherPort }).retval).toBe(TC_ACT.OK);
    expect(deny.lookup({ saddr: '192.168.1.5', dport: 53, proto: 17 })).toBe(2);
    expect(stat(STAT.DROP)).toBe(drops + 2);
    deny.delete({ saddr: '192.168.1.5', dport: 53, proto: 17 });
    expect(prog.testRun({ data: denied }).retval).toBe(TC_ACT.OK);
  });

  it('answers an ICMP echo request in place', () => {
    const frame = packet()
      .eth({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:0b' })
      .ipv4({ src: '10.0.0.1', dst: '10.0.0.2' })
      .icmp({ type: 8, id: 77, seq: 3 })
      .payload('ping')
      .build();
    const r = prog.testRun({ data: frame });
    expect(r.retval).toBe(TC_ACT.OK);
    const out = parsePacket(r.data as Buffer);
    expect(out.eth).toMatchObject({ src: '02:00:00:00:00:0b', dst: '02:00:00:00:00:0a' });
    expect(out.ipv4).toMatchObject({ src: '10.0.0.2', dst: '10.0.0.1', checksumOk: true });
    expect(out.icmp).toEqual({ type: 0, code: 0, id: 77, seq: 3, checksumOk: true });
    expect(out.payload.toString()).toBe('ping');
  });

  it('decrements the IPv6 hop limit and drops at 1', () => {
    const build = (hopLimit: number): Buffer =>
      packet().eth().ipv6({ src: 'fd00::1', dst: 'fd00::2', hopLimit }).udp({ sport: 1, dport: 2 }).payload('v6').build();
    const r = prog.testRun({ data: build(10) });
    expect(r.retval).toBe(TC_ACT.OK);
    const out = parsePacket(r.data as Buffer);
    expect(out.ipv6).toMatchObject({ src: 'fd00::1', dst: 'fd00::2', hopLimit: 9 });
    expect(out.udp?.checksumOk).toBe(true);
    expect(prog.testRun({ data: build(1) }).retval).toBe(TC_ACT.SHOT);
  });

  it('drops IPv4 with TTL 1 and truncated headers', () => {
    const ttl1 = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 1 }).udp({ sport: 1, dport: 2 }).build();
    expect(prog.testRun({ data: ttl1 }).retval).toBe(TC_ACT.SHOT);
    const truncated = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).tcp({ sport: 1, dport: 2 }).build();
    expect(prog.testRun({ data: truncated.subarray(0, 14 + 20 + 10) }).retval).toBe(TC_ACT.SHOT);
  });

  it('lets non-IP frames through and counts them', () => {
    const before = stat(STAT.OTHER);
    const arp = packet().eth().payload(Buffer.alloc(28)).build();
    expect(prog.testRun({ data: arp }).retval).toBe(TC_ACT.OK);
    expect(stat(STAT.OTHER)).toBe(before + 1);
  });

  it('reports too small an output buffer as ENOSPC', () => {
    const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).build();
    expect(() => prog.testRun({ data: frame, dataOutSize: 10 })).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });
});
