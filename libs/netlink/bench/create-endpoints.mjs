#!/usr/bin/env node
// Endpoint plumbing cost: N sets of (netns + veth with its peer in the netns + address +
// routes + neighbour), built once through @cilia/netlink and once with one `ip` process per
// step, in the same run. Prints p50/p99 per set for both. Needs root and a built package
// (`npx nx run @cilia/netlink:build`).
//
//   node libs/netlink/bench/create-endpoints.mjs [N=200]
//
// Everything happens inside a private "node" namespace, so the machine's own links and
// routes are never touched; all namespaces are removed at the end, even on failure.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const dist = new URL('../dist/index.js', import.meta.url);
const { createNetns, deleteNetns, openNetns } = await import(dist.href).catch((err) => {
  throw new Error(`@cilia/netlink is not built (${err.message}); run \`npx nx run @cilia/netlink:build\``);
});

const N = Number(process.argv[2] ?? 200);
if (!Number.isInteger(N) || N < 1 || N > 30000) throw new Error(`N must be an integer 1..30000, got ${process.argv[2]}`);

const tag = randomBytes(2).toString('hex');
const nodeNs = `cilia-bench-node-${tag}`;
const ROUTER_IP = '10.249.0.1';
// API sets take even addresses, ip sets odd ones: both share the node namespace's routes.
const podIp = (k) => `10.250.${(k >> 8) & 255}.${k & 255}`;
const apiIp = (i) => podIp(2 * i + 2);
const cliIp = (i) => podIp(2 * i + 3);
const created = [];

const hex = (n) => (n & 255).toString(16).padStart(2, '0');
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summary(label, samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { label, n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean, max: s[s.length - 1] };
}

async function viaApi(node, i) {
  const pod = `cilia-bench-a${tag}-${i}`;
  const hostIf = `lxa${tag}${i.toString(16)}`;
  await createNetns(pod);
  created.push(pod);
  const nl = await openNetns(pod);
  try {
    const host = await node.addVeth({ name: hostIf, peerName: 'eth0', peerNetns: pod, up: true });
    await node.addRoute({ dst: `${apiIp(i)}/32`, dev: host.index });
    await nl.setLinkUp('lo');
    await nl.setLinkUp('eth0');
    await nl.addAddress({ dev: 'eth0', address: `${apiIp(i)}/32` });
    await nl.addRoute({ dst: 'default', gateway: ROUTER_IP, dev: 'eth0', onlink: true });
    await nl.addNeighbour({ dev: 'eth0', address: ROUTER_IP, mac: host.mac });
  } finally {
    await nl.close();
  }
}

function viaIp(i) {
  const pod = `cilia-bench-i${tag}-${i}`;
  const hostIf = `lxi${tag}${i.toString(16)}`;
  const mac = `02:00:00:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`;
  ip('netns', 'add', pod);
  created.push(pod);
  ip('-n', nodeNs, 'link', 'add', hostIf, 'address', mac, 'up', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod);
  ip('-n', nodeNs, 'route', 'add', `${cliIp(i)}/32`, 'dev', hostIf);
  ip('-n', pod, 'link', 'set', 'lo', 'up');
  ip('-n', pod, 'link', 'set', 'eth0', 'up');
  ip('-n', pod, 'addr', 'add', `${cliIp(i)}/32`, 'dev', 'eth0');
  ip('-n', pod, 'route', 'add', 'default', 'via', ROUTER_IP, 'dev', 'eth0', 'onlink');
  ip('-n', pod, 'neigh', 'add', ROUTER_IP, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
}

async function main() {
  await createNetns(nodeNs);
  created.push(nodeNs);
  const node = await openNetns(nodeNs);
  const api = [];
  const cli = [];
  try {
    // Interleaved, so that both see the same growth of the node namespace.
    for (let i = 0; i < N; i++) {
      let t = performance.now();
      await viaApi(node, i);
      api.push(performance.now() - t);
      t = performance.now();
      viaIp(i);
      cli.push(performance.now() - t);
    }
    // Spot check that a set really works: the last API pod reaches the node's router address.
    await node.addAddress({ dev: 'lo', address: `${ROUTER_IP}/32` });
    await node.setLinkUp('lo');
    ip('netns', 'exec', `cilia-bench-a${tag}-${N - 1}`, 'ping', '-c1', '-W2', ROUTER_IP);
  } finally {
    await node.close();
  }
  const rows = [summary('@cilia/netlink', api), summary('ip commands', cli)];
  console.log(`endpoint plumbing sets: N=${N}, kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`);
  console.log('method              n     p50 ms   p99 ms   mean ms   max ms');
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(18)} ${String(r.n).padStart(4)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${r.mean.toFixed(2).padStart(9)} ${r.max.toFixed(2).padStart(8)}`,
    );
  }
  console.log(`p50 speed-up: ${(rows[1].p50 / rows[0].p50).toFixed(1)}x`);
}

try {
  await main();
} finally {
  for (const name of created.reverse()) await deleteNetns(name).catch(() => undefined);
}
