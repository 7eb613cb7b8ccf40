import { join } from 'node:path';
import { BpfObject, PerCpuMap } from '@cilia/bpf';
import { makePinRoot, removePinRoot } from '@cilia/bpf/testing';
import { HistogramRecorder, type EndpointState, type Logger, type MetricFamily, type PolicyDelta, type PolicyRepository } from '@cilia/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectPath } from '../test/bpf/objects.js';
import { DropReason, Direction, MapName, MetricsKey, MetricsValue } from './maps/index.js';
import { datapathMetricsCollector, type DatapathMetricsSource } from './metrics.js';
import type { PolicyMapWriter } from './policy/realizer.js';
import { PolicyRealizer } from './policy/realizer.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

function source(pinRoot: string, extra: Partial<DatapathMetricsSource> = {}): DatapathMetricsSource {
  return { pinRoot, endpoints: () => [], failClosedEndpoints: () => 0, implementationDelay: () => undefined, ...extra };
}

async function collect(s: DatapathMetricsSource): Promise<Map<string, MetricFamily>> {
  const families = await datapathMetricsCollector('@cilia/datapath', s).collect();
  return new Map(families.map((f) => [f.name, f]));
}

const samplesOf = (f: MetricFamily | undefined) => (f && f.type !== 'histogram' ? f.samples : undefined);

describe('datapath metrics from the pinned cilia_metrics map', () => {
  let pinRoot: string;
  let lxc: BpfObject | undefined;

  beforeAll(() => {
    pinRoot = makePinRoot('dp-metrics');
  });

  afterAll(() => {
    lxc?.close();
    removePinRoot(pinRoot);
  });

  it('has no traffic samples while nothing is pinned', async () => {
    const families = await collect(source(pinRoot));
    for (const name of ['cilia_drop_count_total', 'cilia_drop_bytes_total', 'cilia_forward_count_total', 'cilia_forward_bytes_total']) {
      expect(families.get(name)).toMatchObject({ type: 'counter', samples: [] });
    }
  });

  it('sums each (reason, direction) over CPUs: drops by Cilium\'s reason text and direction (INGRESS/EGRESS), forwards (reason 0) by direction', async () => {
    lxc = BpfObject.open(objectPath('lxc'), { pinRoot });
    lxc.load();
    const map = PerCpuMap.openPinnedPerCpu(join(pinRoot, MapName.metrics), { key: MetricsKey, value: MetricsValue });
    const cpus = map.cpus;
    // CPU i holds (i + 1) × the base, so only a sum over every CPU gives base × cpus(cpus + 1)/2.
    const perCpu = (packets: number, bytes: number) => Array.from({ length: cpus }, (_, i) => ({ packets: packets * (i + 1), bytes: bytes * (i + 1) }));
    const total = (base: number) => (base * cpus * (cpus + 1)) / 2;
    try {
      map.update({ reason: DropReason.policyDenied, dir: Direction.ingress }, perCpu(3, 180));
      map.update({ reason: DropReason.policyNotRealized, dir: Direction.egress }, perCpu(1, 60));
      // Two of Cilia's reasons Cilium names alike: one sample, their sum.
      map.update({ reason: DropReason.rewriteFailed, dir: Direction.egress }, perCpu(4, 400));
      map.update({ reason: DropReason.encapFailed, dir: Direction.egress }, perCpu(5, 500));
      map.update({ reason: DropReason.forwarded, dir: Direction.egress }, perCpu(10, 1000));
      map.update({ reason: DropReason.forwarded, dir: Direction.ingress }, perCpu(20, 3000));
      map.update({ reason: 99, dir: 7 }, perCpu(2, 2));
    } finally {
      map.close();
    }
    const families = await collect(source(pinRoot));
    expect(samplesOf(families.get('cilia_drop_count_total'))).toEqual([
      { labels: { reason: 'Error writing to packet', direction: 'EGRESS' }, value: total(9) },
      { labels: { reason: 'Policy denied', direction: 'INGRESS' }, value: total(3) },
      { labels: { reason: 'No configuration available to perform policy decision', direction: 'EGRESS' }, value: total(1) },
      { labels: { reason: 'unknown reason 99', direction: 'unknown direction 7' }, value: total(2) },
    ]);
    expect(samplesOf(families.get('cilia_drop_bytes_total'))).toEqual([
      { labels: { reason: 'Error writing to packet', direction: 'EGRESS' }, value: total(900) },
      { labels: { reason: 'Policy denied', direction: 'INGRESS' }, value: total(180) },
      { labels: { reason: 'No configuration available to perform policy decision', direction: 'EGRESS' }, value: total(60) },
      { labels: { reason: 'unknown reason 99', direction: 'unknown direction 7' }, value: total(2) },
    ]);
    expect(samplesOf(families.get('cilia_forward_count_total'))).toEqual([
      { labels: { direction: 'INGRESS' }, value: total(20) },
      { labels: { direction: 'EGRESS' }, value: total(10) },
    ]);
    expect(samplesOf(families.get('cilia_forward_bytes_total'))).toEqual([
      { labels: { direction: 'INGRESS' }, value: total(3000) },
      { labels: { direction: 'EGRESS' }, value: total(1000) },
    ]);
  });

  it('counts endpoints per state (every state, 0 included) and those failed closed; the delay histogram once policy runs', async () => {
    const states: EndpointState[] = ['ready', 'ready', 'regenerating', 'not-ready'];
    const delay = new HistogramRecorder([0.001, 0.01]);
    delay.observe(0.0005);
    delay.observe(0.5);
    const families = await collect(
      source(pinRoot, { endpoints: () => states.map((state) => ({ state })), failClosedEndpoints: () => 1, implementationDelay: () => delay }),
    );
    expect(samplesOf(families.get('cilia_endpoint'))).toEqual([{ value: 4 }]);
    expect(samplesOf(families.get('cilia_endpoint_state'))).toEqual([
      { labels: { state: 'waiting-for-identity' }, value: 0 },
      { labels: { state: 'regenerating' }, value: 1 },
      { labels: { state: 'ready' }, value: 2 },
      { labels: { state: 'not-ready' }, value: 1 },
      { labels: { state: 'disconnecting' }, value: 0 },
    ]);
    expect(samplesOf(families.get('cilia_policy_endpoints_fail_closed'))).toEqual([{ value: 1 }]);
    expect(families.get('cilia_policy_implementation_delay_seconds')).toMatchObject({
      type: 'histogram',
      samples: [{ buckets: [[0.001, 1], [0.01, 1]], sum: 0.5005, count: 2 }],
    });
    expect((await collect(source(pinRoot))).has('cilia_policy_implementation_delay_seconds')).toBe(false);
  });
});

describe('policy implementation delay', () => {
  /** A repository with no rules whose deltas the test sends itself. */
  function fakeRepository(): PolicyRepository & { send(delta: PolicyDelta): void } {
    const listeners: ((d: PolicyDelta) => void)[] = [];
    return {
      enforcementMode: 'default',
      import: async () => 1,
      delete: async () => 1,
      revision: () => 0,
      rules: () => [],
      resolve: () => ({ revision: 0, enforcement: { ingress: false, egress: false }, entries: [] }),
      watch: (_subject, listener) => {
        listeners.push(listener);
        return () => undefined;
      },
      send: (delta) => listeners.forEach((l) => l(delta)),
    };
  }

  it('is observed for each delta that changed an endpoint and was written, measured from its issuedAt', () => {
    const repo = fakeRepository();
    let failClosed = false;
    const map: PolicyMapWriter = {
      sync: () => ({ failClosed: false, written: 0, deleted: 0 }),
      apply: () => (failClosed ? { failClosed: true, reason: 'quota' } : { failClosed: false, written: 1, deleted: 0 }),
      remove: () => undefined,
      dump: () => undefined,
      endpoints: () => [],
      failClosed: () => new Map(),
    } as unknown as PolicyMapWriter;
    const observed: number[] = [];
    const realizer = new PolicyRealizer({ repository: repo, map, logger: silent, onImplemented: (s) => observed.push(s) });
    realizer.realize({ id: 1, name: 'a', namespace: 'x', identity: 1000, labels: {} });
    const key = { identity: 0, direction: 'ingress' as const, protocol: 0, port: 0, endPort: 0 };
    const entry = { verdict: 'allow' as const, proxyPort: 0, derivedFrom: ['r'] };
    const issuedAt = performance.timeOrigin + performance.now() - 250;
    repo.send({ revision: 1, upserts: [[key, entry]], deletes: [], issuedAt });
    repo.send({ revision: 2, upserts: [], deletes: [], issuedAt }); // not affected
    repo.send({ revision: 2, upserts: [], deletes: [key] }); // an identity change: no import behind it
    failClosed = true;
    repo.send({ revision: 3, upserts: [[key, entry]], deletes: [], issuedAt }); // not realized
    expect(observed).toHaveLength(1);
    expect(observed[0]).toBeGreaterThanOrEqual(0.25);
    expect(observed[0]).toBeLessThan(60); // seconds, not milliseconds
    realizer.close();
  });
});
