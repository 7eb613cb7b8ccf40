// The loader against the real kernel, with nothing attached anywhere: objects from the repo's
// bpf/, a pin root of its own, and two BpfDatapath generations sharing it (an agent restart).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BpfMap, codec, ProgramArray, type Codec } from '@cilia/bpf';
import { compileBpf, makePinRoot, removePinRoot } from '@cilia/bpf/testing';
import type { Logger } from '@cilia/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalIpCache } from './ipcache.js';
import { BpfDatapath } from './loader.js';
import { CtKey, CtValue } from './maps/conntrack.js';
import { EndpointInfo, EndpointKey } from './maps/endpoints.js';
import { IpcacheKey, IpcacheValue } from './maps/ipcache.js';
import { slotIndex } from './maps/slots.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };
const REPO_BPF = new URL('../../../bpf/', import.meta.url);
const config = { masquerade: true, egressDevice: 'auto', mtu: 'auto' as const, bigTcp: false, monitorAggregation: 'medium' as const, policy: { maxEntries: 262_144, maxEntriesPerEndpoint: 16_384 }, conntrack: { maxEntries: 65_536 } };
const node = { mtu: 1500, hostIPv4: ['192.0.2.1'] };

describe('BpfDatapath (real kernel, nothing attached)', () => {
  let objDir: string;
  let pinRoot: string;
  let slotFiller: string;

  beforeAll(() => {
    objDir = mkdtempSync(join(tmpdir(), 'cilia-loader-test-'));
    compileBpf('lxc', { srcDir: REPO_BPF, outDir: objDir });
    slotFiller = compileBpf('slot_filler', { srcDir: new URL('tests/', REPO_BPF), outDir: objDir });
    pinRoot = makePinRoot('loader');
  });
  afterAll(() => {
    removePinRoot(pinRoot);
    rmSync(objDir, { recursive: true, force: true });
  });

  const generation = () => {
    const ipcache = new LocalIpCache(silent);
    const datapath = new BpfDatapath({ pinRoot, config, ipcache, logger: silent, objectDir: pathToFileURL(`${objDir}/`) });
    return { ipcache, datapath };
  };
  const pinned = <K, V>(name: string, key: Codec<K>, value: Codec<V>) => BpfMap.openPinned(join(pinRoot, name), { key, value });

  it('pins the maps, installs the resume programs and writes the generated ipcache entries', async () => {
    const { datapath } = generation();
    try {
      await datapath.ensureNode(node);
      const slots = new ProgramArray(pinned('cilia_tc_slots', codec.u32, codec.u32));
      expect(slots.get(slotIndex('from-container', 'resume'))).toBeGreaterThan(0);
      expect(slots.get(slotIndex('to-container', 'resume'))).toBeGreaterThan(0);
      const lpm = pinned('cilia_ipcache', IpcacheKey, IpcacheValue);
      expect(lpm.lookup('0.0.0.0/0')?.identity).toBe(2);
      expect(lpm.lookup('192.0.2.1/32')?.identity).toBe(1);
      lpm.close();
    } finally {
      datapath.close();
    }
  });

  it('installs plugin objects into their slots, records who fills each, and clears what a plugin no longer fills or left', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'cilia-loader-state-'));
    const datapath = new BpfDatapath({ pinRoot, config, ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objDir}/`), stateDir });
    const slots = new ProgramArray(pinned('cilia_tc_slots', codec.u32, codec.u32));
    const forward = slotIndex('from-container', 'forward');
    const netdevPolicy = slotIndex('to-netdev', 'policy');
    const spec = (programs: Record<string, { attach: 'from-container' | 'to-netdev'; slot: 'forward' | 'policy' }>, constants = {}) => ({ spec: { object: slotFiller, programs }, constants });
    try {
      const [loaded] = await datapath.installObjects('plugin-a', [spec({ cil_policy_deny: { attach: 'to-netdev', slot: 'policy' }, cil_forward_to_stack: { attach: 'from-container', slot: 'forward' } })]);
      expect(slots.get(forward)).toBe(loaded!.programId('cil_forward_to_stack'));
      expect(slots.get(netdevPolicy)).toBe(loaded!.programId('cil_policy_deny'));
      expect(datapath.slots().map((r) => `${r.owner} ${r.attach}/${r.slot} ${r.program}`)).toEqual([
        'plugin-a to-netdev/policy cil_policy_deny',
        'plugin-a from-container/forward cil_forward_to_stack',
      ]);
      expect(JSON.parse(readFileSync(join(stateDir, 'datapath-slots.json'), 'utf8')).slots).toHaveLength(2);
      const calls = loaded!.map('filler_calls');
      expect([calls.keySize, calls.valueSize, calls.perCpu]).toEqual([4, 8, false]);
      expect(calls.lookup(Buffer.alloc(4))).toEqual(Buffer.alloc(8));

      // Refused: nothing changes. A slot the base fills, a constant the object lacks, a program it lacks.
      await expect(datapath.installObjects('plugin-b', [spec({ cil_policy_deny: { attach: 'from-container', slot: 'policy' } })])).rejects.toThrow(
        'bpf object slot_filler: programs.cil_policy_deny: from-container/policy is filled by the datapath itself',
      );
      await expect(datapath.installObjects('plugin-b', [spec({}, { NO_SUCH: 1 })])).rejects.toThrow(/no global named 'NO_SUCH'/);
      await expect(datapath.installObjects('plugin-a', [spec({ cil_missing: { attach: 'from-container', slot: 'forward' } })])).rejects.toThrow(
        /bpf object slot_filler .* failed to load: .*no program named 'cil_missing'/,
      );
      expect(slots.get(forward)).toBe(loaded!.programId('cil_forward_to_stack'));

      // A new version of the plugin no longer fills to-netdev/policy: emptied. Then it leaves the config.
      const [again] = await datapath.installObjects('plugin-a', [spec({ cil_forward_to_stack: { attach: 'from-container', slot: 'forward' } })]);
      expect(slots.get(forward)).toBe(again!.programId('cil_forward_to_stack'));
      expect(slots.get(netdevPolicy)).toBeUndefined();
      expect((await datapath.releaseSlots(['plugin-a'])).length).toBe(0);
      datapath.close();

      // A restarted agent knows from the record whose slots to clear.
      const restarted = new BpfDatapath({ pinRoot, config, ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objDir}/`), stateDir });
      expect((await restarted.releaseSlots(['plugin-c'])).map((r) => `${r.owner} ${r.attach}/${r.slot}`)).toEqual(['plugin-a from-container/forward']);
      expect(slots.get(forward)).toBeUndefined();
      expect(restarted.slots()).toEqual([]);
      restarted.close();
    } finally {
      datapath.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('attaches an object\'s socket programs to cgroup hooks through links pinned per plugin, replaced in place, detached when it leaves the config', async () => {
    const mount = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')![1]!;
    const [cgA, cgB] = ['a', 'b'].map((x) => join(mount, `cilia-loader-test-${process.pid}-${x}`));
    const sockets = compileBpf('cgroup', { srcDir: new URL('tests/', REPO_BPF), outDir: objDir });
    const links = join(pinRoot, 'links', '_acme_sockets');
    const attached = (cg: string) => (JSON.parse(execFileSync('bpftool', ['-j', 'cgroup', 'show', cg], { encoding: 'utf8' }).trim() || '[]') as { name: string }[]).map((p) => p.name);
    const install = (datapath: BpfDatapath) => datapath.installObjects('@acme/sockets', [{ spec: { object: sockets }, constants: {} }]);
    for (const cg of [cgA, cgB]) mkdirSync(cg!);
    const datapath = new BpfDatapath({ pinRoot, config, ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objDir}/`), cgroupRoot: cgA! });
    try {
      const [obj] = await install(datapath);
      obj!.attachCgroup!('sock_connect4', { hook: 'connect4' });
      obj!.attachCgroup!('sock_sendmsg4', { hook: 'sendmsg4' });
      expect(attached(cgA!).sort()).toEqual(['sock_connect4', 'sock_sendmsg4']);
      expect(readdirSync(links)).toHaveLength(2);
      // Again (a restarted agent): the pinned link is updated, not duplicated.
      const [again] = await install(datapath);
      again!.attachCgroup!('sock_connect4', { hook: 'connect4' });
      expect(attached(cgA!).sort()).toEqual(['sock_connect4', 'sock_sendmsg4']);
      // Another cgroup (the root changed): moved there.
      again!.attachCgroup!('sock_connect4', { hook: 'connect4', cgroup: cgB! });
      expect([attached(cgA!), attached(cgB!)]).toEqual([['sock_sendmsg4'], ['sock_connect4']]);
      expect(again!.detachCgroup!('sock_connect4', { hook: 'connect4' })).toBe(true);
      expect(again!.detachCgroup!('sock_connect4', { hook: 'connect4' })).toBe(false);
      expect(attached(cgB!)).toEqual([]);
      // The plugin leaves the config: its links go.
      datapath.close();
      await datapath.releaseSlots(['someone-else']);
      expect(attached(cgA!)).toEqual([]);
      expect(readdirSync(join(pinRoot, 'links'))).toEqual([]);
    } finally {
      datapath.close();
      rmSync(join(pinRoot, 'links'), { recursive: true, force: true });
      for (const cg of [cgA, cgB]) rmdirSync(cg!);
    }
  });

  it('makes the slot table for a plugin object that does not declare it, and the base reuses it', async () => {
    const fresh = makePinRoot('loader-fresh');
    const pass = compileBpf('pass', { srcDir: new URL('tests/', REPO_BPF), outDir: objDir });
    const datapath = new BpfDatapath({ pinRoot: fresh, config, ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objDir}/`) });
    try {
      const [loaded] = await datapath.installObjects('plugin-a', [{ spec: { object: pass, programs: { cls_pass: { attach: 'to-container', slot: 'forward' } } }, constants: {} }]);
      await datapath.ensureNode(node);
      const slots = new ProgramArray(BpfMap.openPinned(join(fresh, 'cilia_tc_slots'), { key: codec.u32, value: codec.u32 }));
      expect(slots.get(slotIndex('to-container', 'forward'))).toBe(loaded!.programId('cls_pass'));
      expect(slots.get(slotIndex('to-container', 'resume'))).toBeGreaterThan(0);
    } finally {
      datapath.close();
      removePinRoot(fresh);
    }
  });

  it('a second generation (a restarted agent) reuses the pinned maps and their entries; GC drops only expired conntrack', async () => {
    const first = generation();
    await first.datapath.ensureNode(node);
    // What the first agent left: an endpoint entry (tc needs a real interface, which this test
    // leaves alone, so it is written directly) and two connections, one expired.
    const written = pinned('cilia_endpoints', EndpointKey, EndpointInfo);
    written.update('10.9.0.7', { ifindex: 2, hostIfindex: 9, identity: 5, endpointId: 7, flags: 0, mac: '02:00:00:00:00:02', hostMac: '02:00:00:00:00:01' });
    written.close();
    const ct = pinned('cilia_ct', CtKey, CtValue);
    const tuple = { saddr: '10.9.0.7', daddr: '10.9.0.8', dport: 80, proto: 6, flags: 0 };
    const entry = { packetsOrig: 1, bytesOrig: 60, packetsReply: 0, bytesReply: 0, srcIdentity: 5, revNatIndex: 0, state: 3, flags: 0 };
    ct.update({ ...tuple, sport: 1000 }, { ...entry, expiresNs: 1n });
    ct.update({ ...tuple, sport: 1001 }, { ...entry, expiresNs: process.hrtime.bigint() + 60_000_000_000n });
    first.datapath.close();

    const second = generation();
    try {
      await second.datapath.ensureNode(node);
      const endpoints = pinned('cilia_endpoints', EndpointKey, EndpointInfo);
      expect(endpoints.lookup('10.9.0.7')).toMatchObject({ endpointId: 7, identity: 5 });
      expect(await second.datapath.pruneEndpoints([])).toBe(1);
      expect(endpoints.lookup('10.9.0.7')).toBeUndefined();
      endpoints.close();
      expect(second.datapath.collectGarbage()).toBe(1);
      expect([...ct.keys()].map((k) => k.sport)).toEqual([1001]);
    } finally {
      ct.close();
      second.datapath.close();
    }
  });
});
