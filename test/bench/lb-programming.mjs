#!/usr/bin/env node
// Programming the load balancer (@cilia/lb's LoadBalancer writing the pinned LB maps of lb.o):
//   - 10,000 services with 10 backends each (100,000 backends) from nothing to every map written
//     (target ≤ 0.5 s), beside the baseline of the same entries written one syscall each
//     (BpfMap.update per entry, what a writer without batches does) and the floor of the same
//     entries in one updateBatch per map without any bookkeeping, in the same run;
//   - one more service on top of those, 100 times (target p99 ≤ 10 ms).
// usage: node test/bench/lb-programming.mjs   (root; after `nx run-many -t build`)
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadDatapath } from '@cilia/datapath/testing';
import { LoadBalancer, openLbMaps } from '@cilia/lb';
import { LB_OBJECT } from '@cilia/plugin-kube-proxy-replacement';

const SERVICES = 10_000;
const BACKENDS_PER_SERVICE = 10;
const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => logger };

const vip = (i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const backendIp = (i) => `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const service = (i, ns = 'bench') => ({
  namespace: ns,
  name: `s${i}`,
  frontend: { address: vip(i), port: 80, protocol: 'TCP', type: 'ClusterIP' },
  backends: Array.from({ length: BACKENDS_PER_SERVICE }, (_, j) => ({ address: backendIp(i * BACKENDS_PER_SERVICE + j), port: 8080, weight: 1, state: 'active' })),
  externalTrafficPolicy: 'Cluster',
  internalTrafficPolicy: 'Cluster',
  sessionAffinitySeconds: 0,
  algorithm: 'random',
});
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** A fresh pin root with the LB maps (lb.o loaded against the base objects). */
function fresh() {
  const dp = loadDatapath();
  dp.load(fileURLToPath(LB_OBJECT), { LB_MAGLEV_TABLE_SIZE: 16381 });
  return { dp, maps: openLbMaps(dp.pinRoot) };
}

const services = Array.from({ length: SERVICES }, (_, i) => service(i + 1));
let failed = false;

// Ours: one apply from nothing.
const a = fresh();
let full;
let oneMore;
let counts;
try {
  const lb = new LoadBalancer({ maps: a.maps, nodeName: 'bench', maglev: { tableSize: 16381, seed: 0 }, logger });
  const t0 = process.hrtime.bigint();
  lb.apply(services, []);
  full = ms(t0);
  counts = { services: a.maps.services.lookupBatch().length, backends: a.maps.backends.lookupBatch().length };
  if (counts.backends !== SERVICES * BACKENDS_PER_SERVICE || counts.services !== SERVICES * (BACKENDS_PER_SERVICE + 1)) throw new Error(`maps hold ${JSON.stringify(counts)}`);
  const times = [];
  for (let i = 0; i < 100; i++) {
    const s = service(SERVICES + 1 + i, 'more');
    const t1 = process.hrtime.bigint();
    lb.apply([s], []);
    times.push(ms(t1));
  }
  times.sort((x, y) => x - y);
  oneMore = { p50: times[49], p99: times[98], max: times[99] };
} finally {
  a.maps.close();
  a.dp.dispose();
}

// Baseline: the same entries, one update syscall each, into fresh maps.
const b = fresh();
let naive;
try {
  const t0 = process.hrtime.bigint();
  let backendId = 1;
  services.forEach((s, i) => {
    const revNatIndex = i + 1;
    const slot = (n, value) => b.maps.services.update({ address: s.frontend.address, dport: 80, backendSlot: n, proto: 6 }, value);
    s.backends.forEach((be, j) => {
      b.maps.backends.update(backendId, { address: be.address, port: be.port, proto: 6, state: 0 });
      slot(j + 1, { backendId, affinityTimeout: 0, count: 0, revNatIndex, type: 0, algorithm: 0, flags: 0 });
      backendId++;
    });
    b.maps.reverseNat.update(revNatIndex, { address: s.frontend.address, port: 80 });
    slot(0, { backendId: 0, affinityTimeout: 0, count: s.backends.length, revNatIndex, type: 0, algorithm: 0, flags: 0 });
  });
  naive = ms(t0);
} finally {
  b.maps.close();
  b.dp.dispose();
}

// Floor: the same entries in one updateBatch per map, no bookkeeping (what the maps cost).
const c = fresh();
let floor;
try {
  const backendsBatch = [];
  const slots = [];
  const reverseNat = [];
  let backendId = 1;
  services.forEach((s, i) => {
    const revNatIndex = i + 1;
    s.backends.forEach((be, j) => {
      backendsBatch.push([backendId, { address: be.address, port: be.port, proto: 6, state: 0 }]);
      slots.push([{ address: s.frontend.address, dport: 80, backendSlot: j + 1, proto: 6 }, { backendId, affinityTimeout: 0, count: 0, revNatIndex, type: 0, algorithm: 0, flags: 0 }]);
      backendId++;
    });
    reverseNat.push([revNatIndex, { address: s.frontend.address, port: 80 }]);
    slots.push([{ address: s.frontend.address, dport: 80, backendSlot: 0, proto: 6 }, { backendId: 0, affinityTimeout: 0, count: s.backends.length, revNatIndex, type: 0, algorithm: 0, flags: 0 }]);
  });
  const t0 = process.hrtime.bigint();
  c.maps.backends.updateBatch(backendsBatch);
  c.maps.reverseNat.updateBatch(reverseNat);
  c.maps.services.updateBatch(slots);
  floor = ms(t0);
} finally {
  c.maps.close();
  c.dp.dispose();
}

const fullOk = full <= 500;
const moreOk = oneMore.p99 <= 10;
failed = !fullOk || !moreOk;
console.log(`LB programming: ${SERVICES} services, ${SERVICES * BACKENDS_PER_SERVICE} backends (${counts.services} service-map entries)`);
console.log(`  from nothing: LoadBalancer.apply ${full.toFixed(0)} ms   target ≤ 500 ms: ${fullOk ? 'met' : 'NOT met'}`);
console.log(`    baselines: one update syscall per entry ${naive.toFixed(0)} ms (×${(naive / full).toFixed(2)} of apply)   the same entries in one updateBatch per map, no bookkeeping ${floor.toFixed(0)} ms (apply = ×${(full / floor).toFixed(2)} of it)`);
console.log(`  one more service on top (100 times): p50 ${oneMore.p50.toFixed(2)} ms  p99 ${oneMore.p99.toFixed(2)} ms  max ${oneMore.max.toFixed(2)} ms   target p99 ≤ 10 ms: ${moreOk ? 'met' : 'NOT met'}`);
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores)`);
process.exit(failed ? 1 : 0);
