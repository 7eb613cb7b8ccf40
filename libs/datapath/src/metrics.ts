import { join } from 'node:path';
import { BpfError, PerCpuMap } from '@cilia/bpf';
import type { EndpointState, HistogramRecorder, MetricFamily, MetricSample, MetricsCollector } from '@cilia/core';
import { Direction, DROP_REASON_TEXT, DropReason, MapName, MetricsKey, MetricsValue } from './maps/index.js';
import { mapPressureFamily } from './inspect.js';

/** Packets and bytes of one (reason, direction) of `cilia_metrics`, summed over CPUs. */
export interface TrafficCount {
  readonly reason: number;
  readonly dir: number;
  readonly packets: number;
  readonly bytes: number;
}

/** What the datapath metrics read at scrape time. */
export interface DatapathMetricsSource {
  /** The pin root holding `cilia_metrics`. */
  readonly pinRoot: string;
  endpoints(): readonly { readonly state: EndpointState }[];
  /** Endpoints whose policy could not be written, so their traffic is dropped. */
  failClosedEndpoints(): number;
  /** Present once policy is realized (an agent with a policy repository). */
  implementationDelay(): HistogramRecorder | undefined;
}

/** Every state, so a state no endpoint is in reads 0 rather than vanishing (as Cilium does). */
const ENDPOINT_STATES = Object.keys({
  'waiting-for-identity': 0,
  regenerating: 0,
  ready: 0,
  'not-ready': 0,
  disconnecting: 0,
} satisfies Record<EndpointState, 0>) as EndpointState[];

/** As Cilium labels its datapath counters. */
const DIRECTION_TEXT: Readonly<Record<number, string>> = { [Direction.ingress]: 'INGRESS', [Direction.egress]: 'EGRESS' };

/**
 * Every entry of the pinned per-CPU `cilia_metrics` map, summed over CPUs, ordered by reason
 * then direction; empty when nothing is pinned yet (the base datapath not loaded).
 */
export function readTrafficCounts(pinRoot: string): TrafficCount[] {
  let map: PerCpuMap<{ reason: number; dir: number }, { packets: number; bytes: number }>;
  try {
    map = PerCpuMap.openPinnedPerCpu(join(pinRoot, MapName.metrics), { key: MetricsKey, value: MetricsValue });
  } catch (err) {
    if (err instanceof BpfError && err.code === 'ENOENT') return [];
    throw err;
  }
  try {
    const counts = map.lookupBatch().map(([key, perCpu]) => ({
      reason: key.reason,
      dir: key.dir,
      packets: perCpu.reduce((n, v) => n + v.packets, 0),
      bytes: perCpu.reduce((n, v) => n + v.bytes, 0),
    }));
    return counts.sort((a, b) => a.reason - b.reason || a.dir - b.dir);
  } finally {
    map.close();
  }
}

/**
 * Cilium's datapath metrics from the kernel's own counters: drops per reason and direction,
 * forwarded traffic per direction (reason 0 of the same map), endpoints per state, endpoints
 * failed closed, how long policy changes take to reach the maps, and each pinned map's pressure.
 */
export function datapathMetricsCollector(name: string, source: DatapathMetricsSource): MetricsCollector {
  return {
    name,
    collect(): MetricFamily[] {
      const counts = readTrafficCounts(source.pinRoot);
      const drops = counts.filter((c) => c.reason !== DropReason.forwarded);
      const forwards = counts.filter((c) => c.reason === DropReason.forwarded);
      const dropLabels = (c: TrafficCount) => ({ reason: DROP_REASON_TEXT[c.reason] ?? `unknown reason ${c.reason}`, direction: directionText(c.dir) });
      const forwardLabels = (c: TrafficCount) => ({ direction: directionText(c.dir) });
      const families: MetricFamily[] = [
        { name: 'cilia_drop_count_total', help: 'Packets dropped by the datapath, by reason and direction', type: 'counter', samples: summed(drops, dropLabels, (c) => c.packets) },
        { name: 'cilia_drop_bytes_total', help: 'Bytes dropped by the datapath, by reason and direction', type: 'counter', samples: summed(drops, dropLabels, (c) => c.bytes) },
        { name: 'cilia_forward_count_total', help: 'Packets forwarded by the datapath, by direction', type: 'counter', samples: forwards.map((c) => ({ labels: forwardLabels(c), value: c.packets })) },
        { name: 'cilia_forward_bytes_total', help: 'Bytes forwarded by the datapath, by direction', type: 'counter', samples: forwards.map((c) => ({ labels: forwardLabels(c), value: c.bytes })) },
        ...endpointFamilies(source),
        mapPressureFamily(source.pinRoot),
      ];
      const delay = source.implementationDelay();
      if (delay) {
        families.push({
          name: 'cilia_policy_implementation_delay_seconds',
          help: 'Time from a policy import or delete until an affected endpoint has it in its policy map',
          type: 'histogram',
          samples: [delay.sample()],
        });
      }
      return families;
    },
  };
}

function endpointFamilies(source: DatapathMetricsSource): MetricFamily[] {
  const endpoints = source.endpoints();
  const byState = new Map<string, number>(ENDPOINT_STATES.map((s) => [s, 0]));
  for (const e of endpoints) byState.set(e.state, (byState.get(e.state) ?? 0) + 1);
  const states: MetricSample[] = [...byState].map(([state, value]) => ({ labels: { state }, value }));
  return [
    { name: 'cilia_endpoint', help: 'Endpoints managed by this agent', type: 'gauge', samples: [{ value: endpoints.length }] },
    { name: 'cilia_endpoint_state', help: 'Endpoints in each state', type: 'gauge', samples: states },
    {
      name: 'cilia_policy_endpoints_fail_closed',
      help: 'Endpoints whose policy could not be written; their traffic is dropped',
      type: 'gauge',
      samples: [{ value: source.failClosedEndpoints() }],
    },
  ];
}

/** One sample per label set: reasons Cilium names alike (two of Cilia's may share one of Cilium's) add up. */
function summed(counts: readonly TrafficCount[], labels: (c: TrafficCount) => Record<string, string>, value: (c: TrafficCount) => number): MetricSample[] {
  const out = new Map<string, { labels: Record<string, string>; value: number }>();
  for (const c of counts) {
    const l = labels(c);
    const key = JSON.stringify(l);
    const s = out.get(key);
    if (s) s.value += value(c);
    else out.set(key, { labels: l, value: value(c) });
  }
  return [...out.values()];
}

function directionText(dir: number): string {
  return DIRECTION_TEXT[dir] ?? `unknown direction ${dir}`;
}
