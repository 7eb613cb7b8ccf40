#!/usr/bin/env node
// The bandwidth manager's ingress limit under real TCP (iperf3 from the node into a pod), against
// the CNI bandwidth plugin's shape measured in the same run: a TBF qdisc on the host side of a
// kernel-routed pod veth, at the same rate. Per rate, rounds alternate Cilia and TBF; each
// reports the median rate (as a share of the limit) of its runs and the p50/p99 of 200 pings
// sent to the pod during a transfer. Then the unlimited pod beside the limited one, before and
// after the agent restarts without the plugin (its slot cleared): the limiter costs it nothing.
// Cilia is also measured from another pod (local delivery by bpf_redirect_peer, policed in the
// to-container pipeline it enters at the sender's veth), which a qdisc on the host veth never sees.
// Everything lives in a private "node" netns; pods come from a manifest directory with the
// kubernetes.io/ingress-bandwidth annotation. Needs root, iperf3 and a build.
// usage: node test/bench/bandwidth-ingress.mjs [seconds per run] [runs] [rates, e.g. 100M,1G]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 4);
const runs = Number(process.argv[3] ?? 5);
const rates = (process.argv[4] ?? '100M,1G').split(',');
const repo = fileURLToPath(new URL('../..', import.meta.url));
const agentMain = join(repo, 'apps/agent/dist/main.js');
if (!existsSync(agentMain)) throw new Error(`${agentMain} is missing: build first (npx nx run-many -t build)`);

const tag = randomBytes(3).toString('hex');
const nodeNs = `cilia-bench-bw-${tag}`;
const k8sNs = `bw${tag}`;
const bareNs = `cilia-bench-bw-tbf-${tag}`;
const bareIp = '10.249.0.10';
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-bw-'));
const manifests = join(dir, 'manifests');
const socket = join(dir, 'cilia.sock');
const pins = `/sys/fs/bpf/cilia-bench-bw-${tag}`;
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNode = (args) => sh('ip', ['netns', 'exec', nodeNs, ...args]);
const children = [];
let agent;

function api(method, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(check, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Quantity → bits per second (only the suffixes this bench uses). */
const bits = (q) => Number(q.replace(/[kMG]$/, '')) * { k: 1e3, M: 1e6, G: 1e9 }[q.at(-1)];

function pod(name, annotation) {
  const annotations = annotation ? `\n  annotations:\n    kubernetes.io/ingress-bandwidth: "${annotation}"` : '';
  writeFileSync(join(manifests, `${name}.yaml`), `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${k8sNs}${annotations}\nspec:\n  containers: [{name: c, image: none}]\n`);
}

function startAgent(withPlugin) {
  const burst = process.env.BW_BURST_MS ? `bandwidth: {ingressBurstMs: ${process.env.BW_BURST_MS}}\n` : '';
  const plugins = withPlugin ? `plugins: ['@cilia/plugin-bandwidth-manager']\n${burst}` : '';
  writeFileSync(
    join(dir, 'agent.yaml'),
    `agent: {apiSocket: ${socket}, stateDir: ${join(dir, 'state')}, metricsAddress: '', bpfRoot: ${pins}, logLevel: warn}\nipam: {podCIDRs: [10.248.0.0/24]}\nmanifests: {directory: ${manifests}}\n${plugins}`,
  );
  agent = spawn('nsenter', [`--net=/run/netns/${nodeNs}`, process.execPath, agentMain, '--config', join(dir, 'agent.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(agent);
  let err = '';
  agent.stderr.on('data', (d) => (err += d));
  return waitFor(async () => (await api('GET', '/v1/status')).body.health === 'ok', 'the agent').catch((e) => {
    throw new Error(`${e.message}: ${err}`);
  });
}

async function stopAgent() {
  agent.kill('SIGTERM');
  await new Promise((r) => agent.on('close', r));
}

function iperfServer(ns) {
  const child = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
  children.push(child);
}

/** One transfer from the node; with `ping`, 200 pings to the server meanwhile (their RTTs in ms). */
async function transfer(ip, withPing, from = nodeNs) {
  const iperf = spawn('ip', ['netns', 'exec', from, 'iperf3', '-c', ip, '-p', '5201', '-t', String(seconds), '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  iperf.stdout.on('data', (d) => (out += d));
  let rtts = [];
  if (withPing) {
    await new Promise((r) => setTimeout(r, 500)); // the transfer under way
    const interval = Math.max(0.005, (seconds - 1) / 200).toFixed(3);
    const p = spawnSync('ip', ['netns', 'exec', from, 'ping', '-c', '200', '-i', interval, '-n', '-W', '1', ip], { encoding: 'utf8' });
    rtts = pingRtts(p.stdout);
  }
  const code = await new Promise((r) => iperf.on('close', r));
  if (code !== 0) throw new Error(`iperf3 to ${ip} failed: ${out.slice(0, 400)}`);
  const j = JSON.parse(out);
  if (process.env.BW_DEBUG) console.log(ip, j.end.sum_sent.retransmits, j.intervals.map((i) => (i.sum.bits_per_second / 1e6).toFixed(0)).join(" "), j.end.streams?.[0]?.sender?.max_snd_cwnd, j.end.streams?.[0]?.sender?.mean_rtt);
  return { bps: j.end.sum_received.bits_per_second, rtts };
}

/** The RTT of each reply ping printed. */
function pingRtts(text) {
  return [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function main() {
  sh('ip', ['netns', 'add', nodeNs]);
  inNode(['ip', 'link', 'set', 'lo', 'up']);
  inNode(['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
  inNode(['ip', 'addr', 'add', '172.31.249.1/24', 'dev', 'ext0']);
  inNode(['ip', 'link', 'set', 'ext0', 'up']);
  inNode(['ip', 'route', 'add', 'default', 'via', '172.31.249.2']);
  inNode(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // The CNI bandwidth plugin's shape: a kernel-routed pod veth, TBF on its host side.
  sh('ip', ['netns', 'add', bareNs]);
  inNode(['ip', 'link', 'add', 'tbf0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', bareNs]);
  inNode(['ip', 'link', 'set', 'tbf0', 'up']);
  sh('ip', ['-n', bareNs, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', bareNs, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', bareNs, 'addr', 'add', `${bareIp}/32`, 'dev', 'eth0']);
  sh('ip', ['-n', bareNs, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
  sh('ip', ['-n', bareNs, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
  const mac = JSON.parse(inNode(['ip', '-j', 'link', 'show', 'tbf0']))[0].address;
  sh('ip', ['-n', bareNs, 'neigh', 'add', '169.254.1.1', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
  inNode(['ip', 'route', 'add', `${bareIp}/32`, 'dev', 'tbf0']);
  iperfServer(bareNs);

  mkdirSync(manifests);
  pod('limited', rates[0]);
  pod('free');
  pod('client');
  await startAgent(true);
  const eps = await waitFor(async () => {
    const list = (await api('GET', '/v1/endpoints')).body.filter((e) => e.namespace === k8sNs && e.state === 'ready');
    return list.length === 3 ? list : undefined;
  }, 'the pods');
  const ip = Object.fromEntries(eps.map((e) => [e.name, e.ipv4]));
  const clientNs = eps.find((e) => e.name === 'client').netns.replace('/run/netns/', '');
  for (const e of eps) if (e.name !== 'client') iperfServer(e.netns.replace('/run/netns/', ''));
  await new Promise((r) => setTimeout(r, 500));

  console.log(`ingress limit, TCP from the node into a pod (iperf3, ${runs} runs × ${seconds} s per side; medians; ping during a transfer)`);
  for (const rate of rates) {
    pod('limited', rate);
    await waitFor(async () => (await api('GET', '/v1/bandwidth')).body.endpoints.some((e) => e.name === 'limited' && e.ingress?.bitsPerSecond === bits(rate)), `the ${rate} limit`);
    // TBF as the CNI bandwidth plugin sets it: rate, a burst, and a queue of `latency`.
    inNode(['tc', 'qdisc', 'replace', 'dev', 'tbf0', 'root', 'tbf', 'rate', `${bits(rate)}bit`, 'burst', String(Math.max(256 * 1024, Math.round(bits(rate) / 8 / 50))), 'latency', '25ms']);
    const r = { cilia: [], tbf: [], pod: [], ciliaRtt: [], tbfRtt: [], podRtt: [] };
    for (let i = 0; i < runs; i++) {
      for (const side of i % 2 === 0 ? ['cilia', 'tbf', 'pod'] : ['pod', 'tbf', 'cilia']) {
        // pod: from another pod on the node (local delivery, which no qdisc of the host veth sees).
        const t = await transfer(side === 'tbf' ? bareIp : ip.limited, i === 0, side === 'pod' ? clientNs : nodeNs);
        r[side].push(t.bps);
        r[`${side}Rtt`].push(...t.rtts);
      }
    }
    const limit = bits(rate);
    const fmt = (bps) => `${(bps / 1e6).toFixed(1)} Mbit/s (${((100 * bps) / limit).toFixed(1)} %)`;
    const lat = (xs) => (xs.length ? `ping p50 ${pct(xs, 50).toFixed(3)} ms, p99 ${pct(xs, 99).toFixed(3)} ms (${xs.length} replies)` : 'no ping replies');
    console.log(`  ${rate}: Cilia eBPF token bucket ${fmt(median(r.cilia))} [${r.cilia.map((b) => ((100 * b) / limit).toFixed(0)).join(' ')} %]; ${lat(r.ciliaRtt)}`);
    console.log(`  ${rate}: Cilia, from another pod on the node ${fmt(median(r.pod))} [${r.pod.map((b) => ((100 * b) / limit).toFixed(0)).join(' ')} %]; ${lat(r.podRtt)}`);
    console.log(`  ${rate}: TBF on the host veth (baseline) ${fmt(median(r.tbf))} [${r.tbf.map((b) => ((100 * b) / limit).toFixed(0)).join(' ')} %]; ${lat(r.tbfRtt)}`);
  }

  const free = [];
  for (let i = 0; i < runs; i++) free.push((await transfer(ip.free, false)).bps);
  await stopAgent();
  await startAgent(false); // the plugin left the config: its slots are cleared at start
  const bare = [];
  for (let i = 0; i < runs; i++) bare.push((await transfer(ip.free, false)).bps);
  console.log(
    `  unlimited pod beside the limited one: ${(median(free) / 1e9).toFixed(2)} Gbit/s with the limiter, ${(median(bare) / 1e9).toFixed(2)} Gbit/s after a restart without it (×${(median(free) / median(bare)).toFixed(2)}, target ≥ 0.9)`,
  );
}

try {
  await main();
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  for (const ns of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0])) {
    if (ns.startsWith(`cilia_${k8sNs}_`)) spawnSync('ip', ['netns', 'delete', ns]);
  }
  for (const ns of [bareNs, nodeNs]) spawnSync('ip', ['netns', 'delete', ns]);
  rmSync(pins, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
