import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BpfObject } from './object.js';
import { bpfStatsEnabled, listPrograms } from './prog.js';
import { compileBpf, makePinRoot, packet, removePinRoot } from './testing/index.js';

const STATS = '/proc/sys/kernel/bpf_stats_enabled';
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
});

describe('listPrograms', () => {
  it("lists a loaded program with its type, maps and, while kernel.bpf_stats_enabled is 1, its runs", () => {
    const root = makePinRoot('prog');
    cleanups.push(() => removePinRoot(root));
    const obj = BpfObject.open(compileBpf('counter'), { pinRoot: root });
    cleanups.push(() => obj.close());
    obj.load();
    const prog = obj.program('cls_count');
    const hits = obj.map('version_hits');
    const before = readFileSync(STATS, 'utf8').trim();
    cleanups.push(() => writeFileSync(STATS, before));

    writeFileSync(STATS, '1');
    expect(bpfStatsEnabled()).toBe(true);
    const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).payload('x').build();
    prog.testRun({ data: frame, repeat: 5 });
    const listed = listPrograms().find((p) => p.id === prog.id);
    expect(listed).toMatchObject({ name: 'cls_count', type: 'sched_cls', runCount: 5 });
    expect(listed!.runTimeNs).toBeGreaterThan(0);
    expect(listed!.tag).toMatch(/^[0-9a-f]{16}$/);
    expect(listed!.mapIds).toContain(hits.id);

    writeFileSync(STATS, '0');
    expect(bpfStatsEnabled()).toBe(false);
    prog.testRun({ data: frame, repeat: 5 });
    expect(listPrograms().find((p) => p.id === prog.id)?.runCount).toBe(5);
    const id = prog.id;
    obj.close();
    expect(listPrograms().some((p) => p.id === id)).toBe(false);
  });
});
