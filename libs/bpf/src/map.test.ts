import { afterEach, describe, expect, it } from 'vitest';
import { array, u16, u32, u64n } from './codec.js';
import { BpfError } from './errors.js';
import { BpfMap, PerCpuMap } from './map.js';
import { LpmV4Key, TestKey, TestValue } from './testing/fixtures.js';
import { loadTestObject, packet, type LoadedTestObject } from './testing/index.js';


let loaded: LoadedTestObject | undefined;
afterEach(() => {
  loaded?.dispose();
  loaded = undefined;
});

function maps(): LoadedTestObject {
  loaded = loadTestObject('maps');
  return loaded;
}

const key = (i: number) => ({ addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: i & 0xffff, proto: 6, dir: 0 });
const value = (i: number) => ({ packets: i, bytes: i * 100, flags: 1, proxyPort: 0, action: 1 });

describe('BpfMap', () => {
  it('updates, looks up, deletes and iterates typed entries', () => {
    const m = maps().object.map('tiny_hash', { key: TestKey, value: TestValue });
    expect(m.lookup(key(1))).toBeUndefined();
    m.update(key(1), value(1));
    m.update(key(2), value(2));
    expect(m.lookup(key(1))).toEqual(value(1));
    expect(new Set([...m.keys()].map((k) => k.port))).toEqual(new Set([1, 2]));
    expect(Object.fromEntries([...m.entries()].map(([k, v]) => [k.port, v.packets]))).toEqual({ 1: 1, 2: 2 });
    expect(m.delete(key(1))).toBe(true);
    expect(m.delete(key(1))).toBe(false);
    expect(m.lookup(key(1))).toBeUndefined();
  });

  it('honours noexist / exist flags with the kernel errno', () => {
    const m = maps().object.map('tiny_hash', { key: TestKey, value: TestValue });
    m.update(key(1), value(1), 'noexist');
    expect(() => m.update(key(1), value(9), 'noexist')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => m.update(key(2), value(9), 'exist')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    m.update(key(1), value(5), 'exist');
    expect(m.lookup(key(1))?.packets).toBe(5);
  });

  it('reports a full map as E2BIG naming the map and its size', () => {
    const m = maps().object.map('tiny_hash', { key: TestKey, value: TestValue });
    for (let i = 0; i < 4; i++) m.update(key(i), value(i));
    let error: unknown;
    try {
      m.update(key(99), value(99));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BpfError);
    expect((error as BpfError).code).toBe('E2BIG');
    expect((error as BpfError).message).toMatch(/map 'tiny_hash' is full \(max_entries 4\)/);
    m.update(key(3), value(33)); // replacing an existing key still works when full
    expect(m.lookup(key(3))?.packets).toBe(33);
  });

  it('rejects codecs whose size does not match the map', () => {
    const obj = maps().object;
    expect(() => obj.map('tiny_hash', { key: u32 })).toThrow(/key codec is 4 bytes, the map's key is 8/);
  });

  it('writes, reads and deletes in batches', () => {
    const m = maps().object.map('big_hash', { key: TestKey, value: TestValue });
    const entries = Array.from({ length: 10_000 }, (_, i) => [key(i), value(i)] as const);
    expect(m.updateBatch(entries)).toBe(10_000);
    const read = m.lookupBatch(1000);
    expect(read).toHaveLength(10_000);
    const byPort = new Map(read.map(([k, v]) => [`${k.addr}:${k.port}`, v.packets]));
    expect(byPort.get(`10.0.39.15:${9999}`)).toBe(9999);
    expect(m.deleteBatch(entries.slice(0, 4000).map(([k]) => k))).toBe(4000);
    expect(m.lookupBatch()).toHaveLength(6000);
    // A key that is not there does not stop the others from going.
    expect(m.deleteBatch([key(0), key(5000), key(5001)])).toBe(2);
    expect(m.drainBatch()).toHaveLength(5998);
    expect([...m.keys()]).toHaveLength(0);
  });

  it('falls back to single operations where the kernel has no batch op (LPM trie)', () => {
    const m = maps().object.map('lpm_v4', { key: LpmV4Key, value: u32 });
    m.updateBatch([
      [{ prefixlen: 8, addr: Uint8Array.from([10, 0, 0, 0]) }, 1],
      [{ prefixlen: 24, addr: Uint8Array.from([10, 1, 2, 0]) }, 2],
    ]);
    // Longest-prefix match: a /32 lookup key finds the most specific prefix.
    expect(m.lookup({ prefixlen: 32, addr: Uint8Array.from([10, 1, 2, 3]) })).toBe(2);
    expect(m.lookup({ prefixlen: 32, addr: Uint8Array.from([10, 9, 9, 9]) })).toBe(1);
    expect(m.lookup({ prefixlen: 32, addr: Uint8Array.from([11, 0, 0, 1]) })).toBeUndefined();
    expect(m.lookupBatch()).toHaveLength(2);
  });

  it('opens a pinned map by path', () => {
    const l = maps();
    const m = l.object.map('pinned_lru', { key: u32, value: u32 });
    m.update(7, 70);
    const again = BpfMap.openPinned(`${l.pinRoot}/pinned_lru`, { key: u32, value: u32 });
    try {
      expect(again.lookup(7)).toBe(70);
      again.update(8, 80);
      expect(m.lookup(8)).toBe(80);
    } finally {
      again.close();
    }
    expect(() => BpfMap.openPinned(`${l.pinRoot}/nothing`)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('maps created from user space', () => {
  it('creates, pins and reopens a map', () => {
    const l = maps();
    const m = BpfMap.create({ type: 'hash', name: 'scratch', keySize: 4, valueSize: 4, maxEntries: 8 }, { key: u32, value: u32 });
    try {
      m.update(1, 11);
      m.pin(`${l.pinRoot}/scratch`);
    } finally {
      m.close();
    }
    const again = BpfMap.openPinned(`${l.pinRoot}/scratch`, { key: u32, value: u32 });
    try {
      expect(again.lookup(1)).toBe(11);
      expect(again.info).toMatchObject({ type: 1, keySize: 4, valueSize: 4, maxEntries: 8 });
    } finally {
      again.close();
    }
    expect(() => BpfMap.create({ type: 'hash', name: 'bad', keySize: 0, valueSize: 4, maxEntries: 8 })).toThrow(
      /create map 'bad'.*EINVAL/,
    );
    expect(() => BpfMap.create({ type: 'nope' as 'hash', name: 'x', keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(
      /unknown map type 'nope'/,
    );
  });

  it('fills a map-in-map slot with an inner map that programs then read', () => {
    const obj = maps().object;
    const outer = obj.map('outer', { key: u32, value: u32 });
    const prog = obj.program('cls_inner_lookup');
    const frame = packet().eth().ipv4({ src: '1.1.1.1', dst: '2.2.2.2' }).udp({ sport: 1, dport: 2 }).build();
    expect(prog.testRun({ data: frame }).retval).toBe(99);
    const inner = BpfMap.create({ type: 'array', name: 'inner', keySize: 4, valueSize: 4, maxEntries: 4 }, { key: u32, value: u32 });
    try {
      inner.update(0, 42);
      outer.update(0, inner.fd);
      expect(prog.testRun({ data: frame }).retval).toBe(42);
      inner.update(0, 43);
      expect(prog.testRun({ data: frame }).retval).toBe(43);
      expect(outer.lookup(0)).toBeGreaterThan(0); // user space reads back the inner map's id
      const wrong = BpfMap.create({ type: 'hash', name: 'wrong', keySize: 4, valueSize: 4, maxEntries: 4 });
      try {
        expect(() => outer.update(1, wrong.fd)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      } finally {
        wrong.close();
      }
    } finally {
      inner.close();
    }
  });
});

describe('PerCpuMap', () => {
  it('reads one value per CPU and sums them', () => {
    const m = maps().object.perCpuMap('pcpu_hash', { key: u32, value: u64n });
    expect(m.cpus).toBeGreaterThanOrEqual(1);
    const perCpu = Array.from({ length: m.cpus }, (_, c) => 10 * (c + 1));
    m.update(1, perCpu);
    expect(m.lookup(1)).toEqual(perCpu);
    expect(m.sum(1)).toBe(perCpu.reduce((a, b) => a + b, 0));
    m.update(2, [5]); // one value goes to every CPU
    expect(m.lookup(2)).toEqual(new Array(m.cpus).fill(5));
    expect(() => m.update(3, [1, 2, 3, 4, 5, 6, 7, 8, 9].slice(0, m.cpus + 1))).toThrow(/per-CPU values/);
  });

  it('sees what programs counted on whichever CPU they ran', () => {
    const obj = maps().object;
    const counts = obj.perCpuMap('pcpu_array', { key: u32, value: u64n });
    const frame = packet().eth().ipv4({ src: '1.1.1.1', dst: '2.2.2.2' }).udp({ sport: 1, dport: 2 }).build();
    obj.program('cls_pcpu_inc').testRun({ data: frame, repeat: 250 });
    expect(counts.sum(0)).toBe(250);
    expect(counts.lookupBatch().find(([k]) => k === 0)?.[1].reduce((a, b) => a + b, 0)).toBe(250);
  });

  it('is refused by map() and required by perCpuMap()', () => {
    const obj = maps().object;
    expect(() => obj.map('pcpu_hash')).toThrow(/is per-CPU; use perCpuMap\(\)/);
    expect(() => obj.perCpuMap('tiny_hash')).toThrow(/is not per-CPU/);
    expect(PerCpuMap.openPinnedPerCpu).toBeTypeOf('function');
  });

  it('encodes arrays of scalars', () => {
    const c = array(u16, 3);
    const b = Buffer.alloc(6);
    c.encode([1, 2, 3], b, 0);
    expect(c.decode(b, 0)).toEqual([1, 2, 3]);
  });
});
