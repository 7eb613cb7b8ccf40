import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BpfError } from './errors.js';
import { BpfMap } from './map.js';
import { BpfObject } from './object.js';
import { u32, u64n } from './codec.js';
import { compileBpf, makePinRoot, removePinRoot, skbContext, packet } from './testing/index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
});

function tempPinRoot(): string {
  const root = makePinRoot('obj');
  cleanups.push(() => removePinRoot(root));
  return root;
}

function open(name: string, options: Parameters<typeof BpfObject.open>[1] = {}): BpfObject {
  const obj = BpfObject.open(compileBpf(name), { pinRoot: tempPinRoot(), ...options });
  cleanups.push(() => obj.close());
  return obj;
}

const udpTo = (port: number): Buffer =>
  packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1000, dport: port }).payload('x').build();

describe('BpfObject', () => {
  it('lists programs, maps and globals, and loads', () => {
    const obj = open('counter');
    expect(obj.programNames()).toEqual(['cls_count']);
    expect(obj.mapNames()).toEqual(['version_hits']);
    expect(obj.globals()).toEqual([
      { name: 'version', section: '.rodata', size: 4 },
      { name: 'udp_port', section: '.rodata', size: 2 },
    ]);
    obj.load();
    expect(obj.program('cls_count').fd).toBeGreaterThan(0);
    expect(obj.program('cls_count').id).toBeGreaterThan(0);
  });

  it('bakes load-time constants into the program', () => {
    const obj = open('counter', { constants: { version: 2, udp_port: 4242 } });
    obj.load();
    const hits = obj.map('version_hits', { key: u32, value: u64n });
    const prog = obj.program('cls_count');
    expect(prog.testRun({ data: udpTo(4242) }).retval).toBe(0);
    expect(prog.testRun({ data: udpTo(4243) }).retval).toBe(0);
    expect(hits.lookup(2)).toBe(1); // only the packet to udp_port, counted under version 2
    expect(hits.lookup(0)).toBe(0);
  });

  it('opens and loads in one step (openAndLoad), naming the package to build when the file is missing', () => {
    const obj = BpfObject.openAndLoad(compileBpf('counter'), { pinRoot: tempPinRoot(), constants: { version: 3, udp_port: 4242 } });
    try {
      obj.program('cls_count').testRun({ data: udpTo(4242) });
      expect(obj.map('version_hits', { key: u32, value: u64n }).lookup(3)).toBe(1);
    } finally {
      obj.close();
    }
    expect(() => BpfObject.openAndLoad('/nonexistent/x.o', { builtBy: '@cilia/plugin-x' })).toThrow(/^cannot open \/nonexistent\/x\.o \(is @cilia\/plugin-x built\?\): BPF object \/nonexistent\/x\.o does not exist/);
    expect(() => BpfObject.openAndLoad(compileBpf('counter'), { pinRoot: tempPinRoot(), constants: { nope: 1 } })).toThrow(/no global named 'nope'/);
  });

  it('refuses unknown constants and values that do not fit, naming them', () => {
    const obj = open('counter');
    expect(() => obj.setConstant('nope', 1)).toThrow(/no global named 'nope' \(globals: version, udp_port\)/);
    expect(() => obj.setConstant('udp_port', 70000)).toThrow(/constant 'udp_port' \(2 bytes\) cannot hold 70000/);
  });

  it('rejects a program the verifier refuses with errno, program name and log tail', () => {
    const obj = open('reject');
    let error: unknown;
    try {
      obj.load();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BpfError);
    const e = error as BpfError;
    expect(e.errno).toBe(13);
    expect(e.code).toBe('EACCES');
    expect(e.program).toBe('cls_unchecked_read');
    expect(e.verifierLog).toMatch(/invalid access to packet/);
    expect(e.message).toMatch(/cls_unchecked_read/);
    expect(e.message).toMatch(/verifier log \(tail\)/);
  });

  it('loads the rest when the rejected program is skipped', async () => {
    const obj = open('reject', { skipPrograms: ['cls_unchecked_read'] });
    await obj.loadAsync();
    expect(obj.program('cls_fine').testRun({ data: udpTo(1) }).retval).toBe(0);
    expect(() => obj.program('cls_unchecked_read')).toThrow(/was not loaded/);
  });

  it('reports a verifier rejection through loadAsync too', async () => {
    const obj = open('reject');
    await expect(obj.loadAsync()).rejects.toMatchObject({ code: 'EACCES', program: 'cls_unchecked_read' });
  });

  it('fails clearly when the pin root is missing', () => {
    const obj = BpfObject.open(compileBpf('counter'), { pinRoot: '/sys/fs/bpf/cilia-missing-root-for-test/x' });
    cleanups.push(() => obj.close());
    expect(() => obj.load()).toThrow(
      /pin root \/sys\/fs\/bpf\/cilia-missing-root-for-test\/x does not exist \(needed to pin version_hits\)/,
    );
    try {
      obj.load();
    } catch (err) {
      expect((err as BpfError).code).toBe('ENOENT');
    }
  });

  it('fails clearly when the pin root is not on bpffs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-notbpffs-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const obj = BpfObject.open(compileBpf('counter'), { pinRoot: dir });
    cleanups.push(() => obj.close());
    expect(() => obj.load()).toThrow(/is not on a bpffs mount/);
  });

  it('reuses a map pinned by name across objects (how state survives a restart)', () => {
    const pinRoot = tempPinRoot();
    const first = open('counter', { pinRoot, constants: { version: 1, udp_port: 53 } });
    first.load();
    first.program('cls_count').testRun({ data: udpTo(53) });
    first.close();

    const second = open('counter', { pinRoot, constants: { version: 1, udp_port: 53 } });
    second.load();
    const hits = second.map('version_hits', { key: u32, value: u64n });
    expect(hits.lookup(1)).toBe(1); // the count written through the first object's map
    second.program('cls_count').testRun({ data: udpTo(53) });
    expect(hits.lookup(1)).toBe(2);
  });

  it('pins maps named in `pin` and reuses maps handed over with reuseMap', () => {
    const pinRoot = tempPinRoot();
    const first = open('maps', { pinRoot, pin: ['tiny_hash'] });
    first.load();
    expect(existsSync(`${pinRoot}/tiny_hash`)).toBe(true);
    expect(existsSync(`${pinRoot}/big_hash`)).toBe(false);
    const shared = first.map('lpm_v4');

    const second = open('maps', { pinRoot, pin: ['tiny_hash'] });
    second.reuseMap('lpm_v4', shared);
    second.load();
    first.map('tiny_hash').update(Buffer.alloc(8, 1), Buffer.alloc(24, 2));
    expect(second.map('tiny_hash').lookup(Buffer.alloc(8, 1))).toEqual(Buffer.alloc(24, 2));
    const key = Buffer.from([32, 0, 0, 0, 10, 0, 0, 1]);
    shared.update(key, Buffer.from([7, 0, 0, 0]));
    expect(second.map('lpm_v4').lookup(key)).toEqual(Buffer.from([7, 0, 0, 0]));
    expect(() => second.pinMap('tiny_hash')).toThrow(/already loaded/);
    expect(() => second.map('tiny_hash').update(Buffer.alloc(8), Buffer.alloc(32))).toThrow(
      /map 'tiny_hash': value must be 24 bytes, got 32/,
    );
  });

  it('reuses a pinned map with its own size, entries kept, when the object asks for another', () => {
    const pinRoot = tempPinRoot();
    const first = open('counter', { pinRoot, constants: { version: 1, udp_port: 53 } });
    first.load();
    first.program('cls_count').testRun({ data: udpTo(53) });
    const size = first.map('version_hits').info.maxEntries;
    first.close();
    const resized = open('counter', { pinRoot, constants: { version: 1, udp_port: 53 } });
    resized.setMaxEntries('version_hits', size * 2);
    resized.load();
    const hits = resized.map('version_hits', { key: u32, value: u64n });
    expect(hits.info.maxEntries).toBe(size);
    expect(hits.lookup(1)).toBe(1);
  });

  it('refuses to reuse a pinned map whose definition changed, naming it', () => {
    const pinRoot = tempPinRoot();
    const obj = open('counter', { pinRoot });
    // Another program's map under the same name: same size, other value size.
    const other = BpfMap.create({ type: 'array', name: 'version_hits', keySize: 4, valueSize: 16, maxEntries: 4 });
    cleanups.push(() => other.close());
    other.pin(`${pinRoot}/version_hits`);
    let error: unknown;
    try {
      obj.load();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BpfError);
    expect((error as BpfError).code).toBe('EINVAL');
    expect((error as BpfError).message).toMatch(/reuse pinned map at '.*\/version_hits'/);
  });

  it('names what is missing: object file, program, map', () => {
    expect(() => BpfObject.open('/nonexistent/x.o')).toThrow(/BPF object \/nonexistent\/x.o does not exist/);
    const obj = open('pass');
    expect(() => obj.program('cls_pass')).toThrow(/not loaded yet/);
    obj.load();
    expect(() => obj.program('nope')).toThrow(/no program named 'nope' \(programs: cls_pass, xdp_pass, xdp_pass2\)/);
    expect(() => obj.map('nope')).toThrow(/no map named 'nope'/);
    obj.close();
    expect(() => obj.program('cls_pass')).toThrow(/is closed/);
  });

  it('passes a context in and out of a test run', () => {
    const obj = open('pass');
    obj.load();
    const r = obj.program('cls_pass').testRun({ data: udpTo(1), ctx: skbContext({ mark: 0x1234 }), repeat: 10 });
    expect(r.retval).toBe(0);
    expect(r.ctx?.readUInt32LE(8)).toBe(0x1234);
    expect(r.data?.length).toBe(udpTo(1).length);
    expect(r.duration).toBeGreaterThanOrEqual(0);
  });
});
