import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { attachTc, attachXdp, detachTc, detachXdp, queryTc, queryXdp } from './attach.js';
import { u32, u64n } from './codec.js';
import { BpfError } from './errors.js';
import { BpfObject } from './object.js';
import { compileBpf, makePinRoot, removePinRoot } from './testing/index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()?.();
    } catch {
      // keep cleaning up the rest
    }
  }
});

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

/** A veth pair: `host` in this namespace (10.x.y.1/30), `peer` in a fresh netns (.2). */
function vethPair(): { ns: string; host: string; peer: string; hostIp: string; peerIp: string } {
  const id = randomBytes(3).toString('hex');
  const ns = `cbt-${id}`;
  const host = `cb${id}a`;
  const peer = `cb${id}b`;
  const subnet = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2, 4), 16)}`;
  const base = (parseInt(id.slice(4, 6), 16) % 60) * 4;
  const hostIp = `${subnet}.${base + 1}`;
  const peerIp = `${subnet}.${base + 2}`;
  ip('netns', 'add', ns);
  cleanups.push(() => ip('netns', 'del', ns));
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
  cleanups.push(() => ip('link', 'del', host));
  ip('link', 'set', peer, 'netns', ns);
  ip('addr', 'add', `${hostIp}/30`, 'dev', host);
  ip('link', 'set', host, 'up');
  ip('-n', ns, 'addr', 'add', `${peerIp}/30`, 'dev', peer);
  ip('-n', ns, 'link', 'set', peer, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  return { ns, host, peer, hostIp, peerIp };
}

function counterObject(pinRoot: string, version: number, port: number): BpfObject {
  const obj = BpfObject.open(compileBpf('counter'), { pinRoot, constants: { version, udp_port: port } });
  cleanups.push(() => obj.close());
  obj.load();
  return obj;
}

function tcFilters(dev: string, direction: string): string[] {
  return execFileSync('tc', ['filter', 'show', 'dev', dev, direction], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(' bpf ') && l.includes(' handle '));
}

/** The kernel's count of datagrams a full receive buffer dropped, for the UDP socket on `port`. */
function socketDrops(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/udp', 'utf8')
    .split('\n')
    .find((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hexPort}`));
  return line ? Number(line.trim().split(/\s+/).at(-1)) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tc attach', () => {
  it('attaches, finds, replaces in place (never duplicates) and detaches', () => {
    const { host } = vethPair();
    const pinRoot = makePinRoot('tc');
    cleanups.push(() => removePinRoot(pinRoot));
    const v1Object = counterObject(pinRoot, 1, 9);
    const v1 = v1Object.program('cls_count');
    const v2 = counterObject(pinRoot, 2, 9).program('cls_count');

    expect(queryTc({ interface: host, direction: 'ingress' })).toBe(0);
    const a = attachTc(v1, { interface: host, direction: 'ingress' });
    expect(a).toMatchObject({ handle: 1, priority: 1, progId: v1.id });
    expect(queryTc({ interface: host, direction: 'ingress' })).toBe(v1.id);

    // The attachment outlives the object that loaded it (the agent exiting)...
    const v1Id = v1.id;
    v1Object.close();
    expect(queryTc({ interface: host, direction: 'ingress' })).toBe(v1Id);
    // ...and a restarted agent attaches again at the same place: replaced, not added.
    attachTc(v2, { interface: host, direction: 'ingress' });
    attachTc(v2, { interface: host, direction: 'ingress' });
    expect(queryTc({ interface: host, direction: 'ingress' })).toBe(v2.id);
    expect(tcFilters(host, 'ingress')).toHaveLength(1);

    attachTc(v2, { interface: host, direction: 'egress', handle: 7, priority: 3 });
    expect(queryTc({ interface: host, direction: 'egress', handle: 7, priority: 3 })).toBe(v2.id);
    expect(queryTc({ interface: host, direction: 'egress' })).toBe(0);

    expect(detachTc({ interface: host, direction: 'ingress' })).toBe(true);
    expect(detachTc({ interface: host, direction: 'ingress' })).toBe(false);
    expect(queryTc({ interface: host, direction: 'ingress' })).toBe(0);
    expect(tcFilters(host, 'ingress')).toHaveLength(0);
  });

  it('names a missing interface', () => {
    const pinRoot = makePinRoot('tc');
    cleanups.push(() => removePinRoot(pinRoot));
    const prog = counterObject(pinRoot, 1, 9).program('cls_count');
    let error: unknown;
    try {
      attachTc(prog, { interface: 'cilia-nope0', direction: 'ingress' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BpfError);
    expect((error as BpfError).code).toBe('ENODEV');
    expect((error as BpfError).message).toMatch(/interface 'cilia-nope0'/);
    expect(() => attachTc(prog, { interface: 0x7ffffff0, direction: 'ingress' })).toThrow(/ifindex 2147483632/);
    expect(() => attachTc(prog, { interface: 1, direction: 'sideways' as 'ingress' })).toThrow(
      /direction must be 'ingress' or 'egress', got 'sideways'/,
    );
  });

  it('replaces a program while packets flow without losing one', async () => {
    const { ns, host, hostIp, peerIp } = vethPair();
    const pinRoot = makePinRoot('tc');
    cleanups.push(() => removePinRoot(pinRoot));
    const port = 20000 + (process.pid % 20000);
    const v1 = counterObject(pinRoot, 1, port);
    const v2 = counterObject(pinRoot, 2, port);
    const hits = v1.map('version_hits', { key: u32, value: u64n });
    const progs = [v1.program('cls_count'), v2.program('cls_count')];
    attachTc(progs[0]!, { interface: host, direction: 'ingress' });

    const total = 20_000;
    let received = 0;
    const socket = createSocket('udp4');
    cleanups.push(() => socket.close());
    socket.on('message', () => received++);
    await new Promise<void>((resolve) => socket.bind({ port, address: hostIp }, resolve));
    socket.setRecvBufferSize(8 << 20);

    const sender = `
      const s = require('node:dgram').createSocket('udp4');
      const buf = Buffer.alloc(32);
      let sent = 0, done = 0;
      // One datagram to another port first resolves ARP, so the counted burst is not queued
      // behind neighbour resolution.
      const start = () => s.send(buf, ${port + 1}, '${hostIp}', () => setTimeout(burst, 50));
      const burst = () => {
        for (let k = 0; k < 25 && sent < ${total}; k++, sent++) {
          s.send(buf, ${port}, '${hostIp}', () => { if (++done === ${total}) s.close(); });
        }
        if (sent < ${total}) setTimeout(burst, 1);
      };
      s.bind({ address: '${peerIp}' }, start);`;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', sender], { stdio: 'inherit' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

    let replacements = 0;
    let running = true;
    void exited.then(() => (running = false));
    while (running) {
      attachTc(progs[++replacements % 2]!, { interface: host, direction: 'ingress' });
      await sleep(3);
    }
    expect(await exited).toBe(0);
    for (let i = 0; i < 100 && received < total; i++) await sleep(20);

    const seen = (hits.lookup(1) ?? 0) + (hits.lookup(2) ?? 0);
    expect(replacements).toBeGreaterThan(20);
    expect(hits.lookup(1)).toBeGreaterThan(0);
    expect(hits.lookup(2)).toBeGreaterThan(0);
    expect(seen).toBe(total); // every packet passed through one of the two programs
    // ...and arrived: anything missing was dropped by a full socket buffer on a busy machine
    // (counted by the kernel per socket), not by tc.
    expect(received + socketDrops(port)).toBe(total);
    expect(received).toBeGreaterThan(total / 2);
    expect(tcFilters(host, 'ingress')).toHaveLength(1);
  });
});

describe('XDP attach', () => {
  it('attaches generic and native, replaces atomically, compare-and-swaps, detaches', () => {
    const { host } = vethPair();
    const obj = BpfObject.open(compileBpf('pass'));
    cleanups.push(() => obj.close());
    obj.load();
    const p1 = obj.program('xdp_pass');
    const p2 = obj.program('xdp_pass2');

    expect(attachXdp(p1, { interface: host, mode: 'generic' })).toBe(p1.id);
    expect(queryXdp(host).generic).toBe(p1.id);
    attachXdp(p2, { interface: host, mode: 'generic' });
    expect(queryXdp(host).generic).toBe(p2.id);
    // Compare-and-swap: p1 is no longer the attached program, so this must not replace.
    expect(() => attachXdp(p1, { interface: host, mode: 'generic', expected: p1 })).toThrow(BpfError);
    expect(queryXdp(host).generic).toBe(p2.id);
    attachXdp(p1, { interface: host, mode: 'generic', expected: p2 });
    expect(queryXdp(host).generic).toBe(p1.id);
    detachXdp({ interface: host, mode: 'generic' });
    expect(queryXdp(host).generic).toBe(0);

    attachXdp(p1, { interface: host, mode: 'native' });
    expect(queryXdp(host).native).toBe(p1.id);
    attachXdp(p2, { interface: host, mode: 'native' });
    expect(queryXdp(host).native).toBe(p2.id);
    detachXdp({ interface: host, mode: 'native' });
    expect(queryXdp(host)).toEqual({ generic: 0, native: 0, offload: 0 });
  });

  it('names a missing interface', () => {
    const obj = BpfObject.open(compileBpf('pass'));
    cleanups.push(() => obj.close());
    obj.load();
    expect(() => attachXdp(obj.program('xdp_pass'), { interface: 'cilia-nope1', mode: 'generic' })).toThrow(
      /find interface 'cilia-nope1'.*ENODEV/,
    );
  });
});
