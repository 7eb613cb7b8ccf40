#!/usr/bin/env node
// Identity allocation through the embedded KvStore (on disk, fsynced): allocations per second
// of new label sets — one agent, then three allocators sharing the store, concurrently — against
// the store's bare create-only write rate (baseline, same run); and lookups of known label sets
// (allocate of a held set, lookupByLabels) against a plain Map lookup of the label-list string.
// usage: node test/bench/identity-alloc.mjs [labelSets]   (needs `nx run-many -t build`)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvIdentityAllocator, labelsKey } from '@cilia/identity';
import { EmbeddedKvStore } from '@cilia/kvstore';
import pino from 'pino';

const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = 64;
const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-identity-'));
const kv = await EmbeddedKvStore.open(join(dir, 'kv'));
const labelsOf = (run, i) => ({ 'k8s:io.kubernetes.pod.namespace': `ns${i % 50}`, 'k8s:app': `${run}-app${i}`, 'k8s:pod-template-hash': String(i) });
const perSecond = (n, t0) => n / (Number(process.hrtime.bigint() - t0) / 1e9);

async function pool(n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await fn(next++);
  }));
}

try {
  const enc = new TextEncoder();
  let t0 = process.hrtime.bigint();
  await pool(N, (i) => kv.create(`bench/baseline/${i}`, enc.encode(String(i))));
  const baseline = perSecond(N, t0);

  const one = new KvIdentityAllocator({ kv, node: 'node-1', logger });
  await one.start();
  t0 = process.hrtime.bigint();
  await pool(N, (i) => one.allocate(labelsOf('one', i)));
  const single = perSecond(N, t0);

  const three = ['node-a', 'node-b', 'node-c'].map((node) => new KvIdentityAllocator({ kv, node, logger }));
  for (const a of three) await a.start();
  // Each label set is asked for by all three allocators (overlapping sets, as pods of one app on three nodes).
  t0 = process.hrtime.bigint();
  await pool(N * 3, (j) => three[j % 3].allocate(labelsOf('three', Math.floor(j / 3))));
  const shared = perSecond(N, t0);
  const ids = new Set();
  for (let i = 0; i < N; i++) {
    const got = three.map((a) => a.lookupByLabels(labelsOf('three', i))?.id);
    if (got[0] === undefined || got.some((g) => g !== got[0])) throw new Error(`label set ${i}: inconsistent ids ${got}`);
    ids.add(got[0]);
  }
  if (ids.size !== N) throw new Error(`expected ${N} distinct ids, got ${ids.size}`);

  const M = 200_000;
  const known = Array.from({ length: N }, (_, i) => labelsOf('one', i));
  const map = new Map(known.map((l, i) => [labelsKey(l), i]));
  t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < M; i++) sink += map.get(labelsKey(known[i % N])) ?? 0;
  const mapRate = perSecond(M, t0);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) sink += one.lookupByLabels(known[i % N])?.id ?? 0;
  const lookupRate = perSecond(M, t0);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) sink += (await one.allocate(known[i % N])).identity.id;
  const heldRate = perSecond(M, t0);

  for (const a of [one, ...three]) a.stop();
  const f = (n) => Math.round(n).toLocaleString('en-US');
  console.log(`label sets: ${N}, concurrency ${CONCURRENCY} (embedded KvStore, fsync per batch)`);
  console.log(`baseline  KvStore create-only writes       ${f(baseline)}/s`);
  console.log(`allocate  new label sets, one allocator     ${f(single)}/s (x${(single / baseline).toFixed(2)} of baseline)`);
  console.log(`allocate  new label sets, 3 allocators      ${f(shared)} sets/s, each asked for by all three; ids consistent, ${ids.size} distinct`);
  console.log(`baseline  Map.get of the label list         ${f(mapRate)}/s`);
  console.log(`lookup    lookupByLabels (filter + key)     ${f(lookupRate)}/s (x${(lookupRate / mapRate).toFixed(2)})`);
  console.log(`lookup    allocate of a held label set      ${f(heldRate)}/s (x${(heldRate / mapRate).toFixed(2)})`);
  if (sink < 0) console.log(sink);
} finally {
  await kv.close();
  rmSync(dir, { recursive: true, force: true });
}
