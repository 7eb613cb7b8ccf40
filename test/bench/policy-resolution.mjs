#!/usr/bin/env node
// Policy implementation latency, as Cilium's scale tests measure it: the time from importing ONE
// policy (parse, selector cache, incremental resolution) until every affected endpoint's delta
// is written into a real pinned `cilia_policy` LPM map (through @cilia/datapath's PolicyMap, from
// BpfDatapath.enablePolicy); also the full resolution of one endpoint and the heap at that
// scale. Every figure is printed beside a baseline run in the same process at a small scale.
// usage: node test/bench/policy-resolution.mjs [identities policies endpoints]   (default 6000 3000 200;
// needs `npx nx run-many -t build`; root for the BPF map, else deltas are only collected)
import { makePinRoot, removePinRoot } from '@cilia/bpf/testing';
import { BpfDatapath, datapathConfig, LocalIpCache } from '@cilia/datapath';
import { PolicyEngine } from '@cilia/policy';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const logger = pino({ level: 'silent' });
const [IDS, POLICIES, ENDPOINTS] = (process.argv.length > 2 ? process.argv.slice(2, 5) : ['6000', '3000', '200']).map(Number);
const ITERATIONS = Number(process.env.ITERATIONS ?? 200);
const MAP_ITERATIONS = Number(process.env.MAP_ITERATIONS ?? 200);
const WITH_MAP = process.env.POLICY_BENCH_MAP !== '0';
const BASELINE = { identities: 100, policies: 100, endpoints: 50 };
const WARMUP = 20;

/** A minimal in-memory IdentityAllocator (the real one needs a KvStore; this measures policy, not allocation). */
class BenchIdentities {
  #byId = new Map();
  #byKey = new Map();
  #refs = new Map();
  #listeners = new Set();
  #nextCluster = 256;
  #nextLocal = (1 << 24) + 1;
  constructor() {
    const reserved = ['unknown', 'host', 'world', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress'];
    reserved.forEach((name, id) => this.#set({ id, labels: { [`reserved:${name}`]: '' }, scope: 'reserved' }));
  }
  static key = (labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  add(labels) {
    return this.lookupByLabels(labels) ?? this.#set({ id: this.#nextCluster++, labels, scope: 'cluster' });
  }
  async allocate(labels) {
    const known = this.lookupByLabels(labels);
    return { identity: known ?? this.add(labels), isNew: !known };
  }
  async release(id) {
    const refs = (this.#refs.get(id) ?? 1) - 1;
    if (refs > 0) return void this.#refs.set(id, refs), false;
    const identity = this.#byId.get(id);
    if (!identity || identity.scope !== 'local') return false;
    this.#byId.delete(id);
    this.#byKey.delete(BenchIdentities.key(identity.labels));
    this.#refs.delete(id);
    for (const l of this.#listeners) l({ type: 'delete', identity });
    return true;
  }
  async allocateCidr(cidr) {
    const labels = { [`cidr:${cidr}`]: '', 'reserved:world': '' };
    const identity = this.lookupByLabels(labels) ?? this.#set({ id: this.#nextLocal++, labels, scope: 'local' });
    this.#refs.set(identity.id, (this.#refs.get(identity.id) ?? 0) + 1);
    return identity;
  }
  lookup(id) {
    return this.#byId.get(id);
  }
  lookupByLabels(labels) {
    const id = this.#byKey.get(BenchIdentities.key(labels));
    return id === undefined ? undefined : this.#byId.get(id);
  }
  list() {
    return [...this.#byId.values()];
  }
  watch(listener, options) {
    if (options?.replay) for (const identity of this.#byId.values()) listener({ type: 'upsert', identity });
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  #set(identity) {
    this.#byId.set(identity.id, identity);
    this.#byKey.set(BenchIdentities.key(identity.labels), identity.id);
    for (const l of this.#listeners) l({ type: 'upsert', identity });
    return identity;
  }
}

// ---- the workload: namespaces × apps × versions; policies of the kinds clusters run

function shape(identities) {
  const namespaces = Math.max(2, Math.round(identities / 120));
  const apps = Math.max(2, Math.min(40, Math.floor(identities / namespaces)));
  return { namespaces, apps };
}

function podLabels(i, { namespaces, apps }) {
  const ns = `ns-${i % namespaces}`;
  return {
    'k8s:app': `app-${Math.floor(i / namespaces) % apps}`,
    'k8s:version': `v${Math.floor(i / (namespaces * apps))}`,
    'k8s:io.kubernetes.pod.namespace': ns,
    'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': ns,
    'k8s:io.cilium.k8s.namespace.labels.team': `team-${(i % namespaces) % 5}`,
  };
}

const cnp = (name, namespace, spec) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
const tcpPorts = (...ports) => [{ ports: ports.map(([port, endPort]) => ({ port: String(port), protocol: 'TCP', ...(endPort ? { endPort } : {}) })) }];

/** Deterministic pseudo-random numbers (mulberry32), so namespaces and apps do not alias with j. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Policy number j: half select one app, the rest namespaces, port ranges, CIDRs and denies. */
function policy(j, { namespaces, apps }, name = `p-${j}`) {
  const rnd = random(j + 1);
  const pick = (n) => Math.floor(rnd() * n);
  const ns = `ns-${pick(namespaces)}`;
  const app = `app-${pick(apps)}`;
  const peer = `app-${pick(apps)}`;
  const np = (from, port) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec: { podSelector: {}, ingress: [{ from, ports: [{ port }] }] } });
  switch (j % 10) {
    case 5:
      return np([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': `ns-${pick(namespaces)}` } } }], 443 + pick(3));
    case 6:
      return np([{ namespaceSelector: { matchLabels: { team: `team-${pick(5)}` } }, podSelector: { matchLabels: { app: peer } } }, { podSelector: { matchLabels: { app } } }], 5000 + pick(3));
    case 7:
      return cnp(name, ns, { endpointSelector: { matchLabels: { app } }, ingress: [{ toPorts: tcpPorts([9000 + pick(50), 9100 + pick(50)]) }] });
    case 8:
      return cnp(name, ns, {
        endpointSelector: { matchLabels: { app } },
        egress: [
          { toCIDRSet: [{ cidr: `10.${j % 250}.0.0/16`, except: [`10.${j % 250}.1.0/24`] }], toPorts: tcpPorts([443]) },
          { toCIDR: [`10.${j % 250}.${1 + pick(250)}.0/24`] },
          { toEndpoints: [{ matchLabels: { app: peer } }], toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] },
        ],
      });
    case 9:
      return cnp(name, ns, {
        endpointSelector: { matchLabels: { app } },
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: peer } }], toPorts: tcpPorts([22]) }],
        egressDeny: [{ toEntities: ['world'], toPorts: tcpPorts([25]) }],
      });
    default:
      return cnp(name, ns, { endpointSelector: { matchLabels: { app } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: peer } }], toPorts: tcpPorts([80], [8080]) }] });
  }
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const stats = (samples) => {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.at(-1) };
};

/** Heap in use after a full collection; the turn of the event loop lets the previous run's last promises go first. */
async function settledHeap() {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return process.memoryUsage().heapUsed;
}

async function run(scale, datapath) {
  const writer = datapath?.writer;
  const heapBefore = await settledHeap();
  const sh = shape(scale.identities);
  const identities = new BenchIdentities();
  const pods = Array.from({ length: scale.identities }, (_, i) => identities.add(podLabels(i, sh)));
  const engine = new PolicyEngine({ identities, enforcement: 'default', allowLocalhost: true, logger });
  let t0 = performance.now();
  await engine.import(Array.from({ length: scale.policies }, (_, j) => policy(j, sh)));
  const bulkImportMs = performance.now() - t0;

  let failClosed = 0;
  /** Endpoints with a non-empty delta, and the entries they changed, since the last reset. */
  const touched = { endpoints: 0, entries: 0 };
  const write = (outcome) => outcome?.failClosed && failClosed++;
  const endpoints = [];
  t0 = performance.now();
  for (let k = 0; k < scale.endpoints; k++) {
    const pod = pods[Math.floor((k * scale.identities) / scale.endpoints)];
    const subject = { endpointId: 1 + k, identity: pod.id, labels: pod.labels, namedPorts: { http: { port: 8080, protocol: 'TCP' } } };
    const initial = engine.resolve(subject);
    write(writer?.sync(subject.endpointId, initial.entries, initial.enforcement, initial.revision));
    const unwatch = engine.watch(subject, (delta) => {
      if (delta.upserts.length + delta.deletes.length > 0) {
        touched.endpoints++;
        touched.entries += delta.upserts.length + delta.deletes.length;
      }
      write(writer?.apply(subject.endpointId, delta));
    });
    endpoints.push({ subject, unwatch, entries: initial.entries.length });
  }
  const attachMs = performance.now() - t0;
  console.error(`  [${scale.identities}/${scale.policies}/${scale.endpoints}${writer ? ' +map' : ''}] set up: import ${bulkImportMs.toFixed(0)} ms, attach ${attachMs.toFixed(0)} ms`);
  const selectors = engine.selectorCount;
  const heapAfter = await settledHeap();

  // One policy imported → every affected endpoint's delta written; then deleted (not timed).
  const importMs = [];
  const deleteMs = [];
  const affected = { endpoints: 0, entries: 0, imports: 0 };
  const affectingMs = [];
  const rounds = writer ? MAP_ITERATIONS : ITERATIONS;
  const warmup = WARMUP;
  for (let n = -warmup; n < rounds; n++) {
    const doc = policy(scale.policies + warmup + n, sh, `bench-${n}`);
    touched.endpoints = touched.entries = 0;
    t0 = performance.now();
    await engine.import([doc]);
    if (n >= 0) {
      importMs.push(performance.now() - t0);
      if (touched.endpoints > 0) affectingMs.push(importMs.at(-1));
      affected.endpoints += touched.endpoints;
      affected.entries += touched.entries;
      affected.imports++;
    }
    t0 = performance.now();
    await engine.delete({ name: `bench-${n}`, namespace: doc.metadata.namespace });
    if (n >= 0) deleteMs.push(performance.now() - t0);
  }
  const resolveMs = endpoints.map(({ subject }) => {
    const t = performance.now();
    engine.resolve(subject);
    return performance.now() - t;
  });
  // As the realizer does on a label change: resolve, then sync the whole state (a diff, so
  // nothing is written here; every prefix of the endpoint is derived again).
  const resyncMs = writer
    ? endpoints.map(({ subject }) => {
        const t = performance.now();
        const r = engine.resolve(subject);
        write(writer.sync(subject.endpointId, r.entries, r.enforcement, r.revision));
        return performance.now() - t;
      })
    : [];
  const mapEntries = writer ? endpoints.reduce((sum, { subject }) => sum + (writer.dump(subject.endpointId)?.entries.length ?? 0), 0) : undefined;
  // The writer's mirror: what removing every endpoint from it frees (the engine still watches them).
  const heapWithMirror = writer ? await settledHeap() : 0;
  for (const { subject } of endpoints) writer?.remove(subject.endpointId);
  const mirrorMB = writer ? (heapWithMirror - (await settledHeap())) / 2 ** 20 : undefined;
  for (const { unwatch } of endpoints) unwatch();
  engine.close();
  return {
    scale,
    bulkImportMs,
    attachMs,
    import: stats(importMs),
    affecting: stats(affectingMs),
    affectingShare: affectingMs.length / importMs.length,
    delete: stats(deleteMs),
    resolve: stats(resolveMs),
    resync: writer ? stats(resyncMs) : undefined,
    heapMB: (heapAfter - heapBefore) / 2 ** 20,
    mirrorMB,
    selectors,
    rawEntries: endpoints.reduce((s, e) => s + e.entries, 0),
    mapEntries,
    failClosed,
    affectedEndpoints: affected.endpoints / affected.imports,
    changedEntries: affected.entries / affected.imports,
  };
}

function openDatapath() {
  if (process.getuid?.() !== 0) return { reason: 'not root' };
  let pinRoot;
  try {
    pinRoot = makePinRoot('bench-policy');
    const datapath = new BpfDatapath({ pinRoot, config: datapathConfig.parse({}), ipcache: new LocalIpCache(logger), logger });
    const writer = datapath.enablePolicy({ defaultDeny: false });
    return { pinRoot, writer };
  } catch (err) {
    if (pinRoot) removePinRoot(pinRoot);
    return { reason: err.message };
  }
}

const datapath = openDatapath();
try {
  const dp = datapath.writer && WITH_MAP ? datapath : undefined;
  const scale = { identities: IDS, policies: POLICIES, endpoints: ENDPOINTS };
  // Small runs first: a large run leaves the heap bigger for a while (compiled code, caches),
  // which would make a small run after it measure a negative heap.
  const base = await run(BASELINE, undefined);
  const baseMap = dp && (await run(BASELINE, dp));
  const big = await run(scale, undefined);
  const bigMap = dp && (await run(scale, dp));
  const fmt = (v) => v.toFixed(2).padStart(8);
  console.log(`policy resolution: ${ITERATIONS} single-policy imports (${MAP_ITERATIONS} when written to the map), each followed by its delete; ${WARMUP} more first, not counted`);
  for (const r of [base, big, baseMap, bigMap].filter(Boolean)) {
    console.log(
      `  ${r.scale.identities} identities, ${r.scale.policies} policies, ${r.scale.endpoints} endpoints: bulk import ${r.bulkImportMs.toFixed(0)} ms, endpoints attached in ${r.attachMs.toFixed(0)} ms, ` +
        `${r.selectors} cached selectors, ${r.rawEntries} raw entries${r.mapEntries !== undefined ? `, ${r.mapEntries} map prefixes` : ''}, fail-closed writes ${r.failClosed}; ` +
        `per import ${r.affectedEndpoints.toFixed(1)} endpoints changed, ${r.changedEntries.toFixed(0)} entries (${(r.affectingShare * 100).toFixed(0)}% of imports changed one or more)`,
    );
  }
  const row = (label, get, unit = 'ms', b = base, g = big) => console.log(`  ${label.padEnd(50)} ${fmt(get(b))} ${unit}  ${fmt(get(g))} ${unit}  ×${(get(g) / get(b)).toFixed(2)}`);
  console.log(`  ${''.padEnd(50)} ${'baseline'.padStart(11)}  ${'at scale'.padStart(11)}  ratio`);
  for (const p of ['p50', 'p90', 'p99']) row(`import one policy → deltas delivered, ${p}`, (r) => r.import[p]);
  for (const p of ['p50', 'p99']) row(`  only imports that changed an endpoint, ${p}`, (r) => r.affecting[p]);
  row('delete one policy → deltas delivered, p50', (r) => r.delete.p50);
  if (dp) {
    for (const p of ['p50', 'p90', 'p99']) row(`import one policy → cilia_policy written, ${p}`, (r) => r.import[p], 'ms', baseMap, bigMap);
    for (const p of ['p50', 'p99']) row(`  only imports that changed an endpoint, ${p}`, (r) => r.affecting[p], 'ms', baseMap, bigMap);
    row('delete one policy → cilia_policy written, p50', (r) => r.delete.p50, 'ms', baseMap, bigMap);
  } else {
    console.log(`  (no cilia_policy map: ${datapath.reason ?? "disabled by POLICY_BENCH_MAP=0"})`);
  }
  row('full resolve of one endpoint, p50', (r) => r.resolve.p50);
  row('full resolve of one endpoint, p99', (r) => r.resolve.p99);
  if (dp) for (const p of ['p50', 'p99']) row(`resolve + sync of one endpoint into the map, ${p}`, (r) => r.resync[p], 'ms', baseMap, bigMap);
  row('heap used by identities+policies+endpoints', (r) => r.heapMB, 'MB');
  if (dp) row('  PolicyMap (cilia_policy writer) mirror of the endpoints', (r) => r.mirrorMB, 'MB', baseMap, bigMap);
  console.log(`  process heap used now (after gc): ${((await settledHeap()) / 2 ** 20).toFixed(1)} MB`);
} finally {
  if (datapath.pinRoot) removePinRoot(datapath.pinRoot);
}
