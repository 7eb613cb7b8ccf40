#!/usr/bin/env node
// Identity allocation through a real etcd (Debian's etcd-server, spawned on loopback for the
// run) from three allocators at once, each with its own etcd client — three agents: new label
// sets (each asked for by all three), against etcd's bare create-only write rate from the same
// three clients (baseline, same run); and lookups of known label sets.
// usage: node test/bench/identity-alloc-etcd.mjs [labelSets]   (needs `nx run-many -t build`)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvIdentityAllocator } from '@cilia/identity';
import { EtcdKvStore, etcdKvStoreConfig } from '@cilia/plugin-kvstore-etcd';
import pino from 'pino';

const N = Number(process.argv[2] ?? 500);
const CONCURRENCY = 32;
const logger = pino({ level: 'silent' });
const port = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = s.address();
    s.close(() => resolve(p));
  });
});
const [clientPort, peerPort] = [await port(), await port()];
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-etcd-'));
const client = `http://127.0.0.1:${clientPort}`;
const peer = `http://127.0.0.1:${peerPort}`;
const etcd = spawn('etcd', ['--name', 'b', '--data-dir', dir, '--listen-client-urls', client, '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `b=${peer}`, '--log-level', 'error'], { stdio: 'ignore' });
const perSecond = (n, t0) => n / (Number(process.hrtime.bigint() - t0) / 1e9);
async function pool(n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await fn(next++);
  }));
}
const stores = [];
try {
  const config = etcdKvStoreConfig.parse({ endpoints: [client] });
  for (let t = 0; stores.length < 3; t++) {
    try {
      stores.push(await EtcdKvStore.connect(config));
    } catch (err) {
      if (t > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const enc = new TextEncoder();
  let t0 = process.hrtime.bigint();
  await pool(N * 3, (j) => stores[j % 3].create(`bench/baseline/${j}`, enc.encode(String(j))));
  const baseline = perSecond(N * 3, t0);

  const agents = stores.map((kv, i) => new KvIdentityAllocator({ kv, node: `node-${i + 1}`, logger }));
  for (const a of agents) await a.start();
  const labelsOf = (i) => ({ 'k8s:io.kubernetes.pod.namespace': `ns${i % 20}`, 'k8s:app': `app${i}` });
  t0 = process.hrtime.bigint();
  await pool(N * 3, (j) => agents[j % 3].allocate(labelsOf(Math.floor(j / 3))));
  const allocs = perSecond(N * 3, t0);
  const ids = new Set();
  for (let i = 0; i < N; i++) {
    const got = agents.map((a) => a.lookupByLabels(labelsOf(i))?.id);
    if (got[0] === undefined || got[0] < 256 || got.some((g) => g !== got[0])) throw new Error(`label set ${i}: inconsistent ids ${got}`);
    ids.add(got[0]);
  }
  if (ids.size !== N) throw new Error(`expected ${N} distinct ids, got ${ids.size}`);

  const M = 100_000;
  t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < M; i++) sink += (await agents[i % 3].allocate(labelsOf(i % N))).identity.id;
  const held = perSecond(M, t0);
  for (const a of agents) a.stop();
  const f = (n) => Math.round(n).toLocaleString('en-US');
  console.log(`label sets: ${N}, 3 allocators with their own etcd clients, ${CONCURRENCY} requests in flight (etcd on loopback)`);
  console.log(`baseline  etcd create-only writes, 3 clients   ${f(baseline)}/s`);
  console.log(`allocate  new label sets, 3 allocators         ${f(allocs)} allocations/s (${f(allocs / 3)} sets/s; x${(allocs / baseline).toFixed(2)} of baseline); ids consistent, ${ids.size} distinct`);
  console.log(`lookup    allocate of a held label set         ${f(held)}/s`);
  if (sink < 0) console.log(sink);
} finally {
  for (const s of stores) await s.close().catch(() => undefined);
  etcd.kill('SIGKILL');
  await new Promise((r) => etcd.once('close', r));
  rmSync(dir, { recursive: true, force: true });
}
