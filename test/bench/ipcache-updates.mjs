#!/usr/bin/env node
// ipcache updates per second into the datapath's LPM map (`cilia_ipcache`, as declared in
// bpf/include/cilia/maps.h), through @cilia/datapath's LocalIpCache `apply` in batches of 1, 100
// and 1000 entries, against one BpfMap update per entry (the baseline) in the same run.
// The map is created from user space with the datapath's definition and pinned under a
// throwaway pin root. The writer mirrors the agent's (one updateBatch per apply), which
// @cilia/datapath does not export.
// usage: node test/bench/ipcache-updates.mjs [entries]   (needs root and `nx run-many -t build`)
import { BpfMap } from '@cilia/bpf';
import { makePinRoot, removePinRoot } from '@cilia/bpf/testing';
import { datapathMaps, LocalIpCache } from '@cilia/datapath';
import pino from 'pino';

const N = Number(process.argv[2] ?? 50_000);
const IPCACHE_MAX = 65536; // CILIA_IPCACHE_MAX
const BPF_F_NO_PREALLOC = 1;
const ROUNDS = 3;
if (!Number.isInteger(N) || N < 1000 || N > IPCACHE_MAX) throw new Error(`entries: must be an integer from 1000 to ${IPCACHE_MAX}, got '${process.argv[2]}'`);

const logger = pino({ level: 'silent' });
const { IpcacheKey, IpcacheValue } = datapathMaps;
const entries = Array.from({ length: N }, (_, i) => ({
  prefix: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`,
  identity: 256 + (i % 5000),
  tunnelEndpoint: `172.30.0.${1 + (i % 3)}`,
  node: `node-${1 + (i % 3)}`,
  source: 'kvstore',
}));
const value = (e) => ({ identity: e.identity, tunnelEndpoint: e.tunnelEndpoint, flags: 0 });

const pinRoot = makePinRoot('bench-ipcache');
let made = 0;
function freshMap() {
  const map = BpfMap.create(
    { type: 'lpm_trie', name: 'cilia_ipcache', keySize: IpcacheKey.size, valueSize: IpcacheValue.size, maxEntries: IPCACHE_MAX, flags: BPF_F_NO_PREALLOC },
    { key: IpcacheKey, value: IpcacheValue },
  );
  map.pin(`${pinRoot}/cilia_ipcache_${made++}`);
  return map;
}

/** Best of ROUNDS runs, each on a fresh map; checks the map holds all N entries afterwards. */
async function measure(label, run) {
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const map = freshMap();
    try {
      const t0 = process.hrtime.bigint();
      await run(map);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const count = [...map.keys()].length;
      if (count !== N) throw new Error(`${label}: expected ${N} entries in the map, found ${count}`);
      const sample = entries[N >> 1];
      if (map.lookup(sample.prefix)?.identity !== sample.identity) throw new Error(`${label}: ${sample.prefix} has the wrong identity`);
      best = Math.max(best, N / s);
    } finally {
      map.close();
    }
  }
  return { label, perSecond: best };
}

const oneByOne = (map) => {
  for (const e of entries) map.update(e.prefix, value(e));
};
const throughIpCache = (batch) => async (map) => {
  const cache = new LocalIpCache(logger);
  cache.attach({
    write: (upserts, deletes) => {
      if (upserts.length > 0) map.updateBatch(upserts.map((e) => [e.prefix, value(e)]));
      for (const p of deletes) map.delete(p);
    },
    prefixes: () => [...map.keys()],
  });
  for (let i = 0; i < N; i += batch) await cache.apply({ upserts: entries.slice(i, i + batch), deletes: [] });
};

const directBatch = (batch) => (map) => {
  for (let i = 0; i < N; i += batch) map.updateBatch(entries.slice(i, i + batch).map((e) => [e.prefix, value(e)]));
};

/** Whether this kernel has BPF_MAP_UPDATE_BATCH for LPM tries (else @cilia/bpf writes one by one). */
function kernelBatches() {
  const map = freshMap();
  try {
    map.updateBatch(entries.slice(0, 2).map((e) => [e.prefix, value(e)]));
    return map.batchSupported !== false;
  } finally {
    map.close();
  }
}

try {
  const results = [await measure('BpfMap.update, one by one (baseline)', oneByOne)];
  for (const batch of [1, 100, 1000]) results.push(await measure(`LocalIpCache.apply, batches of ${batch}`, throughIpCache(batch)));
  results.push(await measure('BpfMap.updateBatch direct, batches of 1000', directBatch(1000)));
  const base = results[0].perSecond;
  console.log(`ipcache updates into an LPM map (${N} /32 entries, best of ${ROUNDS}; kernel batch op for lpm_trie: ${kernelBatches() ? 'yes' : 'no, written one by one'})`);
  for (const r of results) console.log(`  ${r.label.padEnd(44)} ${Math.round(r.perSecond).toLocaleString('en').padStart(12)} /s  ×${(r.perSecond / base).toFixed(2)} vs baseline`);
} finally {
  removePinRoot(pinRoot);
}
