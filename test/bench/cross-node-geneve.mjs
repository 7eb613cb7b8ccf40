#!/usr/bin/env node
// Cross-node pod-to-pod TCP throughput (iperf3) over the Geneve overlay (plugins/overlay-geneve,
// encapsulated in eBPF) on a 2-node lab, against the baseline of the same run: node-to-node
// over the same underlay (the node namespaces, no pods, no programs on that path). Rounds
// alternate between the two so machine noise hits both; medians are reported with the
// pod/node ratio. Published anchor: Cilium's VXLAN mode reached 91% of node-to-node; target
// here ≥ 0.85. Needs root, iperf3, etcd and a build (npx nx run-many -t build).
// usage: node test/bench/cross-node-geneve.mjs [seconds per run] [rounds]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { api, down, labNames, up } from '../../tools/lab/lab-core.mjs';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const prefix = `b${randomBytes(3).toString('hex')}`;
const names = labNames(prefix);
const children = [];

function background(netns, args) {
  const child = spawn('nsenter', [`--net=${netns}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function throughput(netns, ip, port) {
  const r = spawnSync('nsenter', [`--net=${netns}`, 'iperf3', '-c', ip, '-p', String(port), '-t', String(seconds), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 from ${netns} to ${ip}:${port} failed: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

async function reachable(netns, ip) {
  const deadline = Date.now() + 30_000;
  while (spawnSync('nsenter', [`--net=${netns}`, 'ping', '-c', '1', '-W', '1', ip]).status !== 0) {
    if (Date.now() > deadline) throw new Error(`${ip} not reachable from ${netns}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  await up({ nodes: 2, prefix, routing: 'geneve', log: () => {}, timeoutMs: 120_000 });
  const pods = [];
  for (const k of [1, 2]) {
    const r = await api(names.socket(k), 'POST', '/v1/endpoints', { name: `tp${k}`, namespace: prefix, labels: { app: 'bench' } });
    if (r.status !== 201) throw new Error(`endpoint on ${names.node(k)}: ${JSON.stringify(r.body)}`);
    pods.push(r.body);
  }
  const pod = { client: pods[0].netns, server: pods[1].ipv4, port: 5201 };
  const nodes = { client: `/run/netns/${names.node(1)}`, server: names.nodeIp(2), port: 5202 };
  background(pods[1].netns, ['iperf3', '-s', '-p', '5201']);
  background(`/run/netns/${names.node(2)}`, ['iperf3', '-s', '-p', '5202']);
  await reachable(pod.client, pod.server);
  await reachable(nodes.client, nodes.server);
  await new Promise((r) => setTimeout(r, 300));

  const results = { pod: [], node: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, setup] of round % 2 === 0 ? [['pod', pod], ['node', nodes]] : [['node', nodes], ['pod', pod]]) {
      results[name].push(throughput(setup.client, setup.server, setup.port));
    }
  }
  const p = median(results.pod);
  const n = median(results.node);
  console.log(`pod → pod across nodes over Geneve (eBPF), ${rounds} rounds × ${seconds} s, medians`);
  console.log(`  TCP throughput   node → node (baseline) ${n.toFixed(2)} Gbit/s   pod → pod ${p.toFixed(2)} Gbit/s   ×${(p / n).toFixed(2)} (target ≥ 0.85)`);
}

try {
  await main();
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  await down({ prefix, log: () => {} });
  for (const ns of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0])) {
    if (ns.startsWith(`cilia_${prefix}_`)) spawnSync('ip', ['netns', 'delete', ns]);
  }
}
