#!/usr/bin/env node
// Maglev table generation (@cilia/lb's maglevTable) for M = 65521 slots and N = 1000 backends
// (target ≤ 10 ms), and the Cilium default M = 16381 with N = 100, each beside the paper's
// pseudo-code measured in the same run (Eisenbud et al., NSDI 2016, figure 4: every backend's
// whole permutation precomputed, N × M entries, then the same turns), which builds the same
// table; the two tables are compared slot by slot.
// usage: node test/bench/lb-maglev.mjs [rounds]   (after `nx run @cilia/lb:build`)
import { loadavg } from 'node:os';
import { maglevTable, murmur3 } from '@cilia/lb';

const ROUNDS = Number(process.argv[2] ?? 30);
const WARMUP = 10; // the first runs include V8 compiling the loop
const encoder = new TextEncoder();

/** The paper's populate(): permutation[i][j] = (offset + j × skip) mod M, precomputed. */
function textbook(backends, m, seed) {
  const sorted = backends.map((b, i) => ({ ...b, i })).sort((a, b) => (a.key < b.key ? -1 : 1));
  const n = sorted.length;
  const permutation = new Int32Array(n * m);
  for (let i = 0; i < n; i++) {
    const bytes = encoder.encode(sorted[i].key);
    const offset = murmur3(bytes, seed) % m;
    const skip = (murmur3(bytes, (seed ^ 0x9e3779b9) >>> 0) % (m - 1)) + 1;
    for (let j = 0; j < m; j++) permutation[i * m + j] = (offset + j * skip) % m;
  }
  const next = new Int32Array(n);
  const entry = new Int32Array(m).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = permutation[i * m + next[i]];
      while (entry[c] >= 0) c = permutation[i * m + ++next[i]];
      entry[c] = sorted[i].i;
      next[i]++;
      if (++filled === m) return entry;
    }
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(fn) {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
}

let failed = false;
for (const [m, n, target] of [
  [65521, 1000, 10],
  [16381, 100, undefined],
]) {
  const backends = Array.from({ length: n }, (_, i) => ({ key: `10.${(i >> 8) & 255}.${i & 255}.7:8080/TCP`, weight: 1 }));
  // Same tables, slot by slot.
  const check = textbook(backends, m, 1);
  if (maglevTable(backends, m, 1).some((v, i) => v !== check[i])) throw new Error(`M=${m} N=${n}: the tables differ`);
  for (let r = 0; r < WARMUP; r++) maglevTable(backends, m, 100 + r);
  const ours = [];
  const base = [];
  for (let r = 0; r < ROUNDS; r++) ours.push(time(() => maglevTable(backends, m, r)).ms);
  // The baseline allocates N × M entries (262 MB at 65521 × 1000): fewer rounds, after ours.
  for (let r = 0; r < Math.min(ROUNDS, 5); r++) base.push(time(() => textbook(backends, m, r)).ms);
  const o = median(ours);
  const b = median(base);
  const verdict = target === undefined ? '' : o <= target ? `   target ≤ ${target} ms: met` : `   target ≤ ${target} ms: NOT met`;
  if (target !== undefined && o > target) failed = true;
  console.log(`maglev M=${m} N=${n}: median ${o.toFixed(2)} ms (min ${Math.min(...ours).toFixed(2)})   paper's pseudo-code (baseline) ${b.toFixed(2)} ms   ×${(b / o).toFixed(1)} faster${verdict}`);
}
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores)`);
process.exit(failed ? 1 : 0);
