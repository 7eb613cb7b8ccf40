// Shared fixtures of the datapath BPF unit tests: real dummy links (a test run's skb->ifindex
// must name an existing device), endpoints in the pinned maps, and readers for the context
// and counters the programs leave behind.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { BpfMap, BpfProgram, PerCpuMap, TestRunResult } from '@cilia/bpf';
import { skbContext } from '@cilia/bpf/testing';
import {
  contextFromSkb,
  CtKey,
  CtValue,
  EndpointInfo,
  EndpointKey,
  IpcacheKey,
  IpcacheValue,
  MetricsKey,
  MetricsValue,
  SnatKey,
  SnatValue,
  type CtEntry,
  type CtKeyValue,
  type EndpointInfoValue,
  type PacketContextValue,
} from '../../src/maps/index.js';
import type { Datapath } from './objects.js';

let linkCounter = 0;

/**
 * Removes links an earlier test process left behind (named after its pid, which no longer
 * runs): a worker killed before its afterAll must not leave them for good.
 */
function removeOrphanLinks(): void {
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }) || '[]') as Array<{ ifname: string }>;
  for (const { ifname } of links) {
    const pid = /^cdt(\d+)x\d+$/.exec(ifname)?.[1];
    if (pid === undefined || existsSync(`/proc/${pid}`)) continue;
    try {
      execFileSync('ip', ['link', 'del', ifname], { stdio: 'ignore' });
    } catch {
      // Another worker got there first.
    }
  }
}

/**
 * Links in the current netns (veth pairs: this kernel has no dummy driver), removed by
 * `remove()` (call it in a finally/afterAll).
 */
export function dummyLinks(count: number): { ifindexes: number[]; remove(): void } {
  removeOrphanLinks();
  const names: string[] = [];
  const remove = (): void => {
    for (const name of names) {
      try {
        execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  try {
    const ifindexes: number[] = [];
    for (let i = 0; i < count; i++) {
      const name = `cdt${process.pid % 100000}x${linkCounter++}`;
      execFileSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
      names.push(name);
      const info = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', name], { encoding: 'utf8' })) as Array<{
        ifindex: number;
      }>;
      ifindexes.push(info[0]?.ifindex ?? 0);
    }
    return { ifindexes, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** Typed views of the pinned maps through one loaded object. */
export function datapathMaps(dp: Datapath): {
  endpoints: BpfMap<string, EndpointInfoValue>;
  ipcache: BpfMap<string, { identity: number; tunnelEndpoint: string; flags: number }>;
  ct: BpfMap<CtKeyValue, CtEntry>;
  snat: BpfMap<
    { saddr: string; daddr: string; sport: number; dport: number; proto: number; dir: number },
    { expiresNs: bigint; addr: string; port: number }
  >;
  metrics: PerCpuMap<{ reason: number; dir: number }, { packets: number; bytes: number }>;
} {
  return {
    endpoints: dp.lxc.map('cilia_endpoints', { key: EndpointKey, value: EndpointInfo }),
    ipcache: dp.lxc.map('cilia_ipcache', { key: IpcacheKey, value: IpcacheValue }),
    ct: dp.lxc.map('cilia_ct', { key: CtKey, value: CtValue }),
    snat: dp.host.map('cilia_snat', { key: SnatKey, value: SnatValue }),
    metrics: dp.lxc.perCpuMap('cilia_metrics', { key: MetricsKey, value: MetricsValue }),
  };
}

/** Packets counted under {reason, dir}, summed over CPUs. */
export function metricPackets(
  metrics: PerCpuMap<{ reason: number; dir: number }, { packets: number; bytes: number }>,
  reason: number,
  dir: number,
): number {
  return (metrics.lookup({ reason, dir }) ?? []).reduce((n, v) => n + v.packets, 0);
}

/** A test endpoint: address, MACs and the dummy link standing in for its host-side veth. */
export interface TestEndpoint {
  readonly ip: string;
  readonly info: EndpointInfoValue;
}

export function testEndpoint(ip: string, endpointId: number, hostIfindex: number, identity: number): TestEndpoint {
  const n = endpointId.toString(16).padStart(2, '0');
  return {
    ip,
    info: {
      ifindex: 2,
      hostIfindex,
      identity,
      endpointId,
      flags: 0,
      mac: `02:00:00:00:01:${n}`,
      hostMac: `02:00:00:00:02:${n}`,
    },
  };
}

/** Runs a tc program on `frame` as if it arrived on `ifindex`; returns verdict, packet and context. */
export function run(
  prog: BpfProgram,
  frame: Buffer,
  ifindex: number,
): TestRunResult & { context: PacketContextValue } {
  const r = prog.testRun({ data: frame, ctx: skbContext({ ifindex }) });
  return { ...r, context: contextFromSkb(r.ctx as Buffer) };
}
