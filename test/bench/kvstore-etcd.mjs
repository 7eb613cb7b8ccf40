#!/usr/bin/env node
// etcd KvStore puts per second through @cilia/plugin-kvstore-etcd, one put in flight and 64 in
// flight, against the bare etcd3 client's put on the same etcd in the same run (baseline), plus
// compare-and-swap. Starts a throwaway etcd (Debian's etcd-server) on loopback.
// usage: node test/bench/kvstore-etcd.mjs [puts]   (needs `nx run-many -t build`)
import { EtcdKvStore, etcdKvStoreConfig } from '@cilia/plugin-kvstore-etcd';
import { EtcdServer } from '@cilia/plugin-kvstore-etcd/testing';
import { Etcd3 } from 'etcd3';

const N = Number(process.argv[2] ?? 2000);
const value = new Uint8Array(128).fill(7);
const perSecond = (n, t0) => n / (Number(process.hrtime.bigint() - t0) / 1e9);
const fmt = (x) => `${Math.round(x).toLocaleString('en')}/s`;

async function pool(n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) await fn(next++);
  }));
}

const etcd = await EtcdServer.start();
try {
  const raw = new Etcd3({ hosts: [etcd.endpoint] });
  const buf = Buffer.from(value);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await raw.put(`/raw/seq/${i}`).value(buf);
  const rawSeq = perSecond(N, t0);
  t0 = process.hrtime.bigint();
  await pool(N * 2, (i) => raw.put(`/raw/par/${i}`).value(buf));
  const rawPar = perSecond(N * 2, t0);
  raw.close();

  const store = await EtcdKvStore.connect(etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint] }));
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await store.put(`/kv/seq/${i}`, value);
  const seq = perSecond(N, t0);
  t0 = process.hrtime.bigint();
  await pool(N * 2, (i) => store.put(`/kv/par/${i}`, value));
  const par = perSecond(N * 2, t0);
  t0 = process.hrtime.bigint();
  await pool(N, async (i) => {
    const e = await store.get(`/kv/seq/${i}`);
    await store.compareAndSwap(`/kv/seq/${i}`, value, e.modRevision);
  });
  const cas = perSecond(N, t0);
  await store.close();

  console.log(`etcd3 client put, 1 in flight (baseline)   ${fmt(rawSeq)}`);
  console.log(`KvStore put, 1 in flight                   ${fmt(seq)}  (${(seq / rawSeq).toFixed(2)}x baseline)`);
  console.log(`etcd3 client put, 64 in flight (baseline)  ${fmt(rawPar)}`);
  console.log(`KvStore put, 64 in flight                  ${fmt(par)}  (${(par / rawPar).toFixed(2)}x baseline)`);
  console.log(`KvStore get+compareAndSwap, 64 in flight   ${fmt(cas)}`);
} finally {
  await etcd.stop();
}
