#!/usr/bin/env node
// The flow pipeline's throughput on real datapath records: lxc.o's cil_from_container, test-run
// on a worker thread (repeat), drops a packet from an address that is no endpoint's
// (INVALID_SOURCE) and writes one cilia_packet_event per run into the cilia_events ring while
// the event loop consumes it. Each run of the consumer goes further:
//   1. records delivered to JS, counted only (baseline: the ring-buffer floor of libs/bpf);
//   2. records decoded with the datapath's codecs (@cilia/flow decodeRecord);
//   3. flows: decoded, enriched (both sides looked up), built, kept in the 4095-flow ring,
//      counted by the Hubble metrics — what the agent does per record, on one core.
// Lost records (the ring was full) come from the datapath's own cilia_events_lost and must be 0:
// the producer is paced to keep at most one chunk unconsumed. CPU per record is the time the
// event loop spent in the consumer's callbacks (the producer runs on a worker thread of the same
// process, so the process's CPU time would count the kernel's test runs too); "CPU at 10k
// flows/s" is that × 10 000 per second.
// usage: node test/bench/flow-pipeline.mjs [records]   (root, after `nx run-many -t build`)
import { cpus, loadavg } from 'node:os';
import { RingBufferConsumer, codec } from '@cilia/bpf';
import { packet, skbContext } from '@cilia/bpf/testing';
import { loadDatapath } from '@cilia/datapath/testing';
import { Enricher, FlowObserver, HubbleMetrics, MonotonicClock, buildFlow, decodeRecord, recordScratch } from '@cilia/flow';

const TOTAL = Number(process.argv[2] ?? 2_000_000);
// Two chunks stay below what the 4 MiB ring holds (64 B a record: 65 536).
const CHUNK = 25_000;
const frame = packet().eth().ipv4({ src: '10.99.0.7', dst: '10.99.0.8' }).tcp({ sport: 40000, dport: 80 }).build();

const endpoint = (id, ip, app) => ({ id, name: `${app}-0`, namespace: 'bench', labels: { 'k8s:app': app }, ipv4: ip, netns: '', hostInterface: '', hostMac: '', interfaceName: 'eth0', mac: '', identity: 1000 + id, state: 'ready', policyRevision: 0 });
const endpoints = [endpoint(1, '10.99.0.7', 'client'), endpoint(2, '10.99.0.8', 'server')];
const identities = new Map(endpoints.map((e) => [e.identity, { id: e.identity, labels: { ...e.labels, 'k8s:io.kubernetes.pod.namespace': 'bench' }, scope: 'cluster' }]));

function consumerFor(mode, dp) {
  const stats = { delivered: 0, decoded: 0, flows: 0, busyMs: 0 };
  const scratch = recordScratch();
  const enricher = new Enricher({
    endpoints: { list: () => endpoints, get: (id) => endpoints.find((e) => e.id === id), subscribe: () => () => {} },
    identities: { lookup: (id) => identities.get(id), watch: () => () => {} },
    ipcache: { lookup: () => undefined, subscribe: () => () => {} },
  });
  enricher.start();
  const observer = new FlowObserver({ node: 'bench', capacity: 4095, metrics: new HubbleMetrics() });
  const ctx = { node: 'bench', enricher, clock: new MonotonicClock() };
  const consumer = new RingBufferConsumer(dp.lxc.map('cilia_events'), {
    lostCounter: dp.lxc.perCpuMap('cilia_events_lost', { key: codec.u32, value: codec.u64n }),
    batchBytes: 1 << 20,
    maxRecordsPerWakeup: 8192,
    onBatch: (batch) => {
      const t = performance.now();
      stats.delivered += batch.count;
      if (mode !== 'count') decodeBatch(batch);
      stats.busyMs += performance.now() - t;
    },
  });
  const decodeBatch = (batch) =>
      batch.forEach((buf, offset, length) => {
        const record = decodeRecord(buf, offset, length, scratch);
        if (!record) return;
        stats.decoded++;
        if (mode === 'flows') {
          observer.publish(buildFlow(record, ctx));
          stats.flows++;
        }
      });
  return { consumer, stats };
}

async function run(label, mode) {
  const dp = loadDatapath();
  const prog = dp.lxc.program('cil_from_container');
  const { consumer, stats } = consumerFor(mode, dp);
  try {
    const lostBefore = consumer.stats().lost;
    const t0 = process.hrtime.bigint();
    let produced = 0;
    while (produced < TOTAL) {
      while (produced - stats.delivered > CHUNK) await new Promise((r) => setImmediate(r));
      await prog.testRunAsync({ data: frame, ctx: skbContext({ ifindex: 1 }), repeat: CHUNK });
      produced += CHUNK;
    }
    while (stats.delivered + consumer.stats().lost - lostBefore < produced) await new Promise((r) => setImmediate(r));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const lost = consumer.stats().lost - lostBefore;
    if (mode !== 'count' && stats.decoded !== stats.delivered) throw new Error(`${stats.delivered - stats.decoded} records not decoded`);
    return { label, perSecond: stats.delivered / seconds, lost, cpuUsPerRecord: (stats.busyMs * 1000) / stats.delivered };
  } finally {
    consumer.close();
    dp.dispose();
  }
}

const base = await run('delivered, count only (baseline)', 'count');
const decoded = await run('delivered and decoded', 'decode');
const flows = await run('decoded, enriched, ring + metrics', 'flows');
console.log(`datapath drop records (cil_from_container, INVALID_SOURCE) → JS, ${TOTAL} records; ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const r of [base, decoded, flows]) {
  console.log(
    `  ${r.label.padEnd(36)} ${(r.perSecond / 1e6).toFixed(2).padStart(5)} M records/s   lost ${r.lost}   ` +
      `CPU ${r.cpuUsPerRecord.toFixed(2)} µs/record   ×${(r.perSecond / base.perSecond).toFixed(2)} vs baseline`,
  );
}
console.log(`  agent CPU at 10k flows/s: ${((flows.cpuUsPerRecord * 10_000) / 1e4).toFixed(1)} % of one core (the consumer's time per flow × 10 000/s)`);
if (base.lost || decoded.lost || flows.lost) process.exitCode = 1;
