import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { BpfCtEntry, BpfEndpointEntry, BpfIpCacheEntry, BpfMapSummary, BpfNatEntry, BpfProgramList } from '@cilia/api-client';
import { BpfMap, bpfStatsEnabled, listPrograms, MAP_TYPES, PerCpuMap, type Codec } from '@cilia/bpf';
import type { ApiRoute, MetricFamily } from '@cilia/core';
import { CT_FLAGS, CtKey, CtState, CtValue } from './maps/conntrack.js';
import { ENDPOINT_F_HOST, EndpointInfo, EndpointKey } from './maps/endpoints.js';
import { MapName } from './maps/index.js';
import { IpcacheKey, IpcacheValue } from './maps/ipcache.js';
import { SnatKey, SnatValue } from './maps/nat.js';
import { Direction } from './maps/monitor.js';

const PROTOCOLS: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
const CT_STATES = new Map(Object.entries(CtState).map(([name, n]) => [n as number, name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)]));
const MAP_TYPE_NAMES = new Map(Object.entries(MAP_TYPES).map(([name, n]) => [n as number, name]));
/** Map types whose entries come and go, so they can fill up: hash, per-CPU hash, LRU (both), LPM, hash of maps. */
const FILLING_TYPES = new Set([1, 5, 9, 10, 11, 13]);

const protocol = (n: number) => PROTOCOLS[n] ?? String(n);
/** Seconds from now (CLOCK_MONOTONIC, as the datapath's deadlines) to `deadlineNs`. */
const secondsUntil = (deadlineNs: bigint, now: bigint) => Math.round(Number(deadlineNs - now) / 1e6) / 1e3;

/** Reads the pinned map `name` under `pinRoot`, or nothing when the datapath has not pinned it yet. */
function readPinned<K, V, T>(pinRoot: string, name: string, codecs: { key: Codec<K>; value: Codec<V> }, row: (key: K, value: V) => T): T[] {
  let map: BpfMap<K, V>;
  try {
    map = BpfMap.openPinned(join(pinRoot, name), codecs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    return [...map.entries()].map(([k, v]) => row(k, v));
  } finally {
    map.close();
  }
}

/** `cilia_ct`, one row per connection, as `cilia bpf ct list` shows it. */
export function conntrackEntries(pinRoot: string): BpfCtEntry[] {
  const now = process.hrtime.bigint();
  return readPinned(pinRoot, MapName.conntrack, { key: CtKey, value: CtValue }, (k, v) => ({
    source: k.saddr,
    destination: k.daddr,
    sourcePort: k.sport,
    destinationPort: k.dport,
    protocol: protocol(k.proto),
    state: CT_STATES.get(v.state) ?? String(v.state),
    expiresInSeconds: secondsUntil(v.expiresNs, now),
    packetsOriginal: Number(v.packetsOrig),
    bytesOriginal: Number(v.bytesOrig),
    packetsReply: Number(v.packetsReply),
    bytesReply: Number(v.bytesReply),
    sourceIdentity: v.srcIdentity,
    flags: Object.entries(CT_FLAGS)
      .filter(([, bit]) => (v.flags & bit) !== 0)
      .map(([name]) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace('orig', 'original')),
  }));
}

/** `cilia_snat`, one row per translation. */
export function natEntries(pinRoot: string): BpfNatEntry[] {
  const now = process.hrtime.bigint();
  return readPinned(pinRoot, MapName.snat, { key: SnatKey, value: SnatValue }, (k, v) => ({
    direction: k.dir === Direction.egress ? 'egress' : 'ingress',
    source: k.saddr,
    destination: k.daddr,
    sourcePort: k.sport,
    destinationPort: k.dport,
    protocol: protocol(k.proto),
    translatedAddress: v.addr,
    translatedPort: v.port,
    expiresInSeconds: secondsUntil(v.expiresNs, now),
  }));
}

/** `cilia_ipcache` as the datapath holds it (not the agent's memory). */
export function ipcacheEntries(pinRoot: string): BpfIpCacheEntry[] {
  return readPinned(pinRoot, MapName.ipcache, { key: IpcacheKey, value: IpcacheValue }, (prefix, v) => ({ prefix, identity: v.identity, tunnelEndpoint: v.tunnelEndpoint, flags: v.flags }));
}

/** `cilia_endpoints`, one row per address. */
export function endpointEntries(pinRoot: string): BpfEndpointEntry[] {
  return readPinned(pinRoot, MapName.endpoints, { key: EndpointKey, value: EndpointInfo }, (address, v) => ({
    address,
    endpointId: v.endpointId,
    identity: v.identity,
    ifindex: v.ifindex,
    hostIfindex: v.hostIfindex,
    mac: v.mac,
    hostMac: v.hostMac,
    host: (v.flags & ENDPOINT_F_HOST) !== 0,
  }));
}

/** Every map pinned under `pinRoot` (plugins' too), with its fill where it can fill up. */
export function pinnedMaps(pinRoot: string): BpfMapSummary[] {
  const out: BpfMapSummary[] = [];
  for (const path of pinnedFiles(pinRoot)) {
    const map = openPinnedMap(path);
    if (!map) continue;
    try {
      const { type, maxEntries } = map.info;
      const name = relative(pinRoot, path);
      const typeName = MAP_TYPE_NAMES.get(type) ?? `type ${type}`;
      if (!FILLING_TYPES.has(type)) {
        out.push({ name, type: typeName, maxEntries });
        continue;
      }
      let entries = 0;
      for (const _ of map.keys()) entries++;
      out.push({ name, type: typeName, entries, maxEntries, pressure: maxEntries ? Math.round((entries / maxEntries) * 1e6) / 1e6 : 0 });
    } finally {
      map.close();
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** `cilia_bpf_map_pressure{map_name}`, as Cilium exposes it (`cilium_bpf_map_pressure`), for the maps that fill up. */
export function mapPressureFamily(pinRoot: string): MetricFamily {
  return {
    name: 'cilia_bpf_map_pressure',
    help: 'Fill of each pinned BPF map that can fill up: entries / max entries (0..1)',
    type: 'gauge',
    samples: pinnedMaps(pinRoot)
      .filter((m) => m.pressure !== undefined)
      .map((m) => ({ labels: { map_name: m.name }, value: m.pressure! })),
  };
}

/** This agent's programs: those using a map pinned under its pin root, with their run statistics. */
export function agentPrograms(pinRoot: string): BpfProgramList {
  const ids = new Set<number>();
  for (const path of pinnedFiles(pinRoot)) {
    const map = openPinnedMap(path);
    if (!map) continue;
    ids.add(map.id);
    map.close();
  }
  const programs = listPrograms()
    .filter((p) => p.mapIds.some((id) => ids.has(id)))
    .map((p) => ({ id: p.id, name: p.name, type: p.type, tag: p.tag, runCount: p.runCount, runTimeNs: p.runTimeNs, averageRunTimeNs: p.runCount ? Math.round(p.runTimeNs / p.runCount) : 0 }));
  return { statsEnabled: bpfStatsEnabled(), programs };
}

/** The map pinned at `path` (per-CPU or not); undefined for a pinned link or program. */
function openPinnedMap(path: string): { readonly info: BpfMap['info']; readonly id: number; keys(): Iterable<unknown>; close(): void } | undefined {
  try {
    return BpfMap.openPinned(path);
  } catch (err) {
    // openPinned refuses a per-CPU map with a TypeError; anything else is not a map.
    if (err instanceof TypeError) return PerCpuMap.openPinnedPerCpu(path);
    return undefined;
  }
}

/** Every pin under `dir` but the cgroup links (`links/`, plugin-objects.ts), which are no maps. */
function pinnedFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (!e.isDirectory() ? [join(dir, e.name)] : e.name === 'links' ? [] : pinnedFiles(join(dir, e.name))));
}

/** `/v1/bpf/*` and `/v1/maps`: the datapath's maps and programs, read from the pins on each request. */
export function inspectRoutes(pinRoot: string): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/bpf/ct', summary: 'the connection tracking map (cilia_ct), one entry per connection', handler: () => ({ body: conntrackEntries(pinRoot) }) },
    { method: 'GET', path: '/v1/bpf/nat', summary: 'the source NAT map (cilia_snat), one entry per translation and direction', handler: () => ({ body: natEntries(pinRoot) }) },
    { method: 'GET', path: '/v1/bpf/ipcache', summary: 'the ipcache as the datapath holds it (cilia_ipcache): prefix, identity, tunnel endpoint', handler: () => ({ body: ipcacheEntries(pinRoot) }) },
    { method: 'GET', path: '/v1/bpf/endpoints', summary: 'the endpoints map (cilia_endpoints): address, endpoint id, identity, interfaces', handler: () => ({ body: endpointEntries(pinRoot) }) },
    { method: 'GET', path: '/v1/bpf/progs', summary: "the agent's programs (those using its pinned maps), with run counts and time while kernel.bpf_stats_enabled is 1", handler: () => ({ body: agentPrograms(pinRoot) }) },
    { method: 'GET', path: '/v1/maps', summary: 'every map pinned under the pin root: type, entries, capacity, pressure', handler: () => ({ body: pinnedMaps(pinRoot) }) },
  ];
}
