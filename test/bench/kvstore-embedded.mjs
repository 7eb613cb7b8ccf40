#!/usr/bin/env node
// Embedded KvStore puts per second (each acknowledged only once fsynced), one put in flight and
// 64 in flight (group commit), against the raw baseline of the same disk in the same run: append
// a record of the same size to a file and fdatasync it, one at a time.
// usage: node test/bench/kvstore-embedded.mjs [puts]   (needs `nx run-many -t build`)
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedKvStore } from '@cilia/kvstore';

const N = Number(process.argv[2] ?? 2000);
const value = new Uint8Array(128).fill(7);
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-kvstore-'));
const perSecond = (n, t0) => n / (Number(process.hrtime.bigint() - t0) / 1e9);
const fmt = (x) => `${Math.round(x).toLocaleString('en')}/s`;

try {
  // Baseline: what the disk gives for a durable append, one at a time. Measured before and
  // after the store, since this shared virtual disk drifts during a run.
  const record = Buffer.alloc(8 + 160, 7);
  const rawRun = (name) => {
    const fd = openSync(join(dir, name), 'a');
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      writeSync(fd, record);
      fdatasyncSync(fd);
    }
    closeSync(fd);
    return perSecond(N, t);
  };
  const rawBefore = rawRun('raw-1.log');
  let t0;

  const store = await EmbeddedKvStore.open(join(dir, 'kv'));
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await store.put(`/bench/seq/${i}`, value);
  const sequential = perSecond(N, t0);

  t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < N * 5) await store.put(`/bench/par/${next++ % 1000}`, value);
  }));
  const concurrent = perSecond(N * 5, t0);

  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await store.get(`/bench/seq/${i}`);
  const gets = perSecond(N, t0);
  await store.close();

  t0 = process.hrtime.bigint();
  const reopened = await EmbeddedKvStore.open(join(dir, 'kv'));
  const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const keys = (await reopened.list('/bench/')).entries.length;
  await reopened.close();
  const rawAfter = rawRun('raw-2.log');
  const raw = (rawBefore + rawAfter) / 2;

  console.log(`raw append+fdatasync (baseline)  ${fmt(raw)}  (before the store ${fmt(rawBefore)}, after ${fmt(rawAfter)})`);
  console.log(`embedded put, 1 in flight        ${fmt(sequential)}  (${(sequential / raw).toFixed(2)}x baseline)`);
  console.log(`embedded put, 64 in flight       ${fmt(concurrent)}  (${(concurrent / raw).toFixed(2)}x baseline, group commit)`);
  console.log(`embedded get                     ${fmt(gets)}`);
  console.log(`reopen (replay) of ${keys} keys    ${openMs.toFixed(1)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
