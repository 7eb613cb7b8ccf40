// The loader against the real kernel, with nothing attached anywhere: objects from the repo's
// bpf/, a pin root of its own, and two BpfDatapath generations sharing it (an agent restart).
import { mkdtempSync, rmSync } from 'node:fs';
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
const config = { masquerade: true, egressDevice: 'auto', mtu: 'auto' as const, bigTcp: false, policy: { maxEntries: 262_144, maxEntriesPerEndpoint: 16_384 } };
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

  it('fills and empties plugin slots, refusing attach points without tc slots', async () => {
    const { datapath } = generation();
    const slots = new ProgramArray(pinned('cilia_tc_slots', codec.u32, codec.u32));
    const policy = slotIndex('from-container', 'policy');
    try {
      await datapath.installObject({ object: slotFiller, programs: { cil_policy_deny: { attach: 'from-container', slot: 'policy' } } });
      expect(slots.get(policy)).toBeGreaterThan(0);
      await datapath.clearSlot('from-container', 'policy');
      expect(slots.get(policy)).toBeUndefined();
      await expect(datapath.installObject({ object: slotFiller, programs: { cil_policy_deny: { attach: 'cgroup-sock', slot: 'policy' } } })).rejects.toThrow(
        /programs\.cil_policy_deny\.attach: "cgroup-sock" has no tc slots/,
      );
    } finally {
      datapath.close();
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
