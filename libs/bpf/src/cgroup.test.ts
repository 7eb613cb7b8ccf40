import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { attachCgroup, CGROUP_HOOKS, type CgroupHook } from './attach.js';
import { u32, u64n } from './codec.js';
import { BpfObject } from './object.js';
import { compileBpf, makePinRoot, removePinRoot } from './testing/index.js';

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup/unified here, /sys/fs/cgroup on pure v2 hosts). */
function cgroup2Root(): string {
  const mount = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2');
  if (!mount?.[1]) throw new Error('no cgroup2 mount in /proc/self/mounts');
  return mount[1];
}
const CGROUP2 = cgroup2Root();
const HOOK_INDEX: Record<CgroupHook, number> = {
  connect4: 0,
  sendmsg4: 1,
  recvmsg4: 2,
  getpeername4: 3,
  connect6: 4,
  sendmsg6: 5,
  recvmsg6: 6,
  getpeername6: 7,
};

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) {
    try {
      cleanups.pop()?.();
    } catch {
      // keep cleaning up
    }
  }
});

function tempCgroup(): string {
  const path = `${CGROUP2}/cilia-test-${randomBytes(4).toString('hex')}`;
  mkdirSync(path);
  cleanups.push(() => rmdirSync(path));
  return path;
}

function loadSockObject(fromPort: number, toPort: number): BpfObject {
  const obj = BpfObject.open(compileBpf('cgroup'), { constants: { from_port: fromPort, to_port: toPort } });
  cleanups.push(() => obj.close());
  obj.load();
  return obj;
}

/** Runs a Node script as a process inside `cgroup`; resolves with its exit code and output. */
function runInCgroup(cgroup: string, script: string): Promise<{ code: number | null; out: string }> {
  const prologue = `require('node:fs').writeFileSync(${JSON.stringify(`${cgroup}/cgroup.procs`)}, String(process.pid));\n`;
  const child = spawn(process.execPath, ['-e', prologue + script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

async function listen(): Promise<{ port: number; close: () => void }> {
  const server = createServer((sock) => sock.end('hello from the real port'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

describe('cgroup socket-address hooks', () => {
  it('connect4 redirects a process in the cgroup, and only there', async () => {
    const cgroup = tempCgroup();
    const server = await listen();
    cleanups.push(server.close);
    const fromPort = 1 + (server.port % 1000) + 40000; // nothing listens here
    const obj = loadSockObject(fromPort, server.port);
    const calls = obj.map('hook_calls', { key: u32, value: u64n });

    const client = `
      const s = require('node:net').connect(${fromPort}, '127.0.0.1');
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => { console.log(data, s.remotePort); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(1); });`;
    const before = await runInCgroup(cgroup, client);
    expect(before.out.trim()).toBe('ECONNREFUSED');

    const link = attachCgroup(obj.program('sock_connect4'), { cgroup, hook: 'connect4' });
    cleanups.push(() => link.close());
    const after = await runInCgroup(cgroup, client);
    expect(after.code).toBe(0);
    expect(after.out).toMatch(/^hello from the real port/);
    expect(calls.lookup(HOOK_INDEX.connect4)).toBe(1);

    // A process outside the cgroup is not redirected.
    const outside = spawn(process.execPath, ['-e', client], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    outside.stdout.on('data', (d) => (out += d));
    await new Promise((resolve) => outside.on('exit', resolve));
    expect(out.trim()).toBe('ECONNREFUSED');

    link.close(); // unpinned: closing the link detaches the program
    expect((await runInCgroup(cgroup, client)).out.trim()).toBe('ECONNREFUSED');
  });

  it('attaches every v4/v6 hook and runs the UDP ones', async () => {
    const cgroup = tempCgroup();
    const obj = loadSockObject(0, 0);
    const calls = obj.map('hook_calls', { key: u32, value: u64n });
    const programs: Record<CgroupHook, string> = {
      connect4: 'sock_connect4',
      sendmsg4: 'sock_sendmsg4',
      recvmsg4: 'sock_recvmsg4',
      getpeername4: 'sock_getpeername4',
      connect6: 'sock_connect6',
      sendmsg6: 'sock_sendmsg6',
      recvmsg6: 'sock_recvmsg6',
      getpeername6: 'sock_getpeername6',
    };
    for (const hook of Object.keys(CGROUP_HOOKS) as CgroupHook[]) {
      const prog = obj.program(programs[hook]);
      const link = attachCgroup(prog, { cgroup, hook });
      cleanups.push(() => link.close());
      expect(link.progId).toBe(prog.id);
    }
    const udp = `
      const dgram = require('node:dgram');
      const rx = dgram.createSocket('udp4');
      rx.bind(0, '127.0.0.1', () => {
        const tx = dgram.createSocket('udp4');
        tx.send('x', rx.address().port, '127.0.0.1');
        rx.on('message', () => {
          const c = dgram.createSocket('udp4');
          c.connect(rx.address().port, '127.0.0.1', () => { c.remoteAddress(); process.exit(0); });
        });
      });`;
    const r = await runInCgroup(cgroup, udp);
    expect(r.code, r.out).toBe(0);
    expect(calls.lookup(HOOK_INDEX.sendmsg4)).toBeGreaterThanOrEqual(1);
    expect(calls.lookup(HOOK_INDEX.recvmsg4)).toBeGreaterThanOrEqual(1);
    expect(calls.lookup(HOOK_INDEX.connect4)).toBeGreaterThanOrEqual(1);
    expect(calls.lookup(HOOK_INDEX.getpeername4)).toBeGreaterThanOrEqual(1);
  });

  it('finds its pinned link again and replaces the program instead of adding one', () => {
    const cgroup = tempCgroup();
    const pinRoot = makePinRoot('cg');
    cleanups.push(() => removePinRoot(pinRoot));
    const pin = `${pinRoot}/connect4-link`;
    const first = loadSockObject(1, 2).program('sock_connect4');
    const second = loadSockObject(3, 4).program('sock_connect4');

    const a = attachCgroup(first, { cgroup, hook: 'connect4', pin });
    expect(a.replaced).toBe(false);
    a.close(); // the pin keeps it attached, as across an agent restart
    const b = attachCgroup(second, { cgroup, hook: 'connect4', pin });
    expect(b.replaced).toBe(true);
    expect(b.progId).toBe(second.id);
    const listed = execFileSync('bpftool', ['cgroup', 'show', cgroup], { encoding: 'utf8' });
    expect(listed.split('\n').filter((l) => /connect4/.test(l))).toHaveLength(1);
    b.detach();
    expect(execFileSync('bpftool', ['cgroup', 'show', cgroup], { encoding: 'utf8' })).not.toMatch(/connect4/);
  });

  it('names a missing cgroup', () => {
    const prog = loadSockObject(1, 2).program('sock_connect4');
    expect(() => attachCgroup(prog, { cgroup: `${CGROUP2}/cilia-no-such-cgroup`, hook: 'connect4' })).toThrow(
      /open cgroup \/.*\/cilia-no-such-cgroup: .*ENOENT/,
    );
    expect(() => attachCgroup(prog, { cgroup: CGROUP2, hook: 'bind4' as CgroupHook })).toThrow(/hook must be one of/);
  });
});
