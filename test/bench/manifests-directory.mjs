#!/usr/bin/env node
// A manifest directory at scale: the time from starting a ManifestDirectorySource on a directory
// of N manifest files (Namespaces, Pods, CiliumNetworkPolicies) until every object is delivered and
// `synced`, and the time to apply one edited file afterwards; beside the same at 100 files in the
// same run (per-file ratio: ~1 means reading scales linearly).
// usage: node test/bench/manifests-directory.mjs [files]   (default 10000; needs `npx nx run-many -t build`)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestDirectorySource } from '@cilia/resources';
import pino from 'pino';

const N = Number(process.argv[2] ?? 10_000);
const BASELINE = 100;
const logger = pino({ level: 'silent' });

function manifest(i) {
  const ns = `team-${i % 50}`;
  switch (i % 10) {
    case 0:
      return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}-${i}\n  labels:\n    team: t${i % 50}\n`;
    case 1:
      return [
        'apiVersion: cilium.io/v2',
        'kind: CiliumNetworkPolicy',
        'metadata:',
        `  name: allow-${i}`,
        `  namespace: ${ns}`,
        'spec:',
        '  endpointSelector:',
        '    matchLabels:',
        `      app: app-${i}`,
        '  ingress:',
        '    - fromEndpoints:',
        '        - matchLabels:',
        `            app: client-${i}`,
        '      toPorts:',
        '        - ports:',
        '            - port: "80"',
        '              protocol: TCP',
        '',
      ].join('\n');
    default:
      return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-${i}\n  namespace: ${ns}\n  labels:\n    app: app-${i}\n    tier: t${i % 3}\nspec:\n  containers:\n    - name: c\n      image: busybox\n`;
  }
}

async function measure(files) {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-manifests-'));
  try {
    for (let i = 0; i < files; i++) writeFileSync(join(dir, `m-${String(i).padStart(6, '0')}.yaml`), manifest(i));
    const source = new ManifestDirectorySource({ directory: dir, debounceMs: 0, resyncIntervalMs: 0, logger });
    let objects = 0;
    let synced;
    const done = new Promise((resolve) => (synced = resolve));
    let edited;
    const editedSeen = new Promise((resolve) => (edited = resolve));
    source.subscribe(['Namespace', 'Pod', 'CiliumNetworkPolicy'], (e) => {
      if (e.type === 'upsert') {
        objects++;
        if (e.object.metadata?.labels?.app === 'edited') edited();
      }
      if (e.type === 'synced') synced();
    });
    const heapBefore = process.memoryUsage().heapUsed;
    const started = process.hrtime.bigint();
    await source.start();
    await done;
    const startMs = Number(process.hrtime.bigint() - started) / 1e6;
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    const t = process.hrtime.bigint();
    writeFileSync(join(dir, 'm-000002.yaml'), manifest(2).replace('app: app-2', 'app: edited'));
    // The source's watchers do not hold the process open: a timer does, and bounds the wait.
    let timer;
    await Promise.race([editedSeen, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the edit was not applied within 60 s')), 60_000)))]);
    clearTimeout(timer);
    const editMs = Number(process.hrtime.bigint() - t) / 1e6;
    await source.stop();
    if (objects < files) throw new Error(`only ${objects} of ${files} objects delivered`);
    return { startMs, editMs, heapMiB };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await measure(BASELINE); // warm-up: the parser's first calls are compiled, not measured
const base = await measure(BASELINE);
const big = await measure(N);
const fmt = (x) => x.toFixed(1);
console.log(`${BASELINE} files: read and applied in ${fmt(base.startMs)} ms (${fmt((base.startMs / BASELINE) * 1000)} µs/file); one edit applied in ${fmt(base.editMs)} ms`);
console.log(`${N} files: read and applied in ${fmt(big.startMs)} ms (${fmt((big.startMs / N) * 1000)} µs/file, heap +${fmt(big.heapMiB)} MiB); one edit applied in ${fmt(big.editMs)} ms`);
console.log(`ratio per file ${N}/${BASELINE}: ×${(big.startMs / N / (base.startMs / BASELINE)).toFixed(2)}; edit ${N}/${BASELINE}: ×${(big.editMs / base.editMs).toFixed(2)}`);
