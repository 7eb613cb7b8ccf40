#!/usr/bin/env node
// Map writes per second for 100k entries through @cilia/bpf: one update per syscall (the
// baseline) against batched updates, typed (codec-encoded) and pre-encoded.
// usage: node test/bench/bpf-map-updates.mjs [entries]   (needs root and `nx run-many -t build`)
import { BpfObject, codec } from '@cilia/bpf';
import { compileBpf, makePinRoot, removePinRoot } from '@cilia/bpf/testing';

const N = Number(process.argv[2] ?? 100_000);
const TestKey = codec.struct('test_key', { addr: codec.u32, port: codec.u16, proto: codec.u8, dir: codec.u8 });
const TestValue = codec.struct('test_value', {
  packets: codec.u64n,
  bytes: codec.u64n,
  flags: codec.u32,
  proxyPort: codec.u16,
  action: codec.u8,
  pad: codec.pad(1),
});

const pinRoot = makePinRoot('bench');
const obj = BpfObject.open(compileBpf('maps'), { pinRoot });

const entries = Array.from({ length: N }, (_, i) => [
  { addr: 0x0a000000 + i, port: i & 0xffff, proto: 6, dir: i & 1 },
  { packets: i, bytes: i * 64, flags: 1, proxyPort: 0, action: 1 },
]);

function measure(label, mapName, run) {
  const map = obj.map(mapName, { key: TestKey, value: TestValue });
  map.drainBatch();
  run(map); // warm-up: first inserts allocate, caches settle
  map.drainBatch();
  const t0 = process.hrtime.bigint();
  run(map);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const count = [...map.keys()].length;
  if (count !== N) throw new Error(`${label}: expected ${N} entries, map has ${count}`);
  return { label, map: mapName, perSecond: N / s };
}

const oneByOne = (map) => {
  for (const [k, v] of entries) map.update(k, v);
};
const batched = (map) => {
  for (let i = 0; i < N; i += 10_000) map.updateBatch(entries.slice(i, i + 10_000));
};
const keysRaw = Buffer.alloc(N * TestKey.size);
const valuesRaw = Buffer.alloc(N * TestValue.size);
entries.forEach(([k, v], i) => {
  TestKey.encode(k, keysRaw, i * TestKey.size);
  TestValue.encode(v, valuesRaw, i * TestValue.size);
});
const batchedRaw = (map) => map.updateBatchRaw(keysRaw, valuesRaw, N);

try {
  obj.load();
  const results = [];
  for (const mapName of ['big_hash_prealloc', 'big_hash']) {
    results.push(measure('one by one (baseline)', mapName, oneByOne));
    results.push(measure('batched, typed', mapName, batched));
    results.push(measure('batched, pre-encoded', mapName, batchedRaw));
  }
  console.log(`map updates, ${N} entries (test_key 8 B → test_value 24 B), hash maps`);
  for (const mapName of ['big_hash_prealloc', 'big_hash']) {
    const base = results.find((r) => r.map === mapName && r.label.startsWith('one by one')).perSecond;
    console.log(`  ${mapName}${mapName === 'big_hash' ? ' (BPF_F_NO_PREALLOC)' : ''}`);
    for (const r of results.filter((x) => x.map === mapName)) {
      console.log(`    ${r.label.padEnd(24)} ${(r.perSecond / 1e6).toFixed(2).padStart(6)} M entries/s   ×${(r.perSecond / base).toFixed(2)} vs baseline`);
    }
  }
} finally {
  obj.close();
  removePinRoot(pinRoot);
}
