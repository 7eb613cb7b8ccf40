#!/usr/bin/env node
// Pod-to-pod TCP throughput (iperf3) and request/response rate (1-byte ping-pong over one TCP
// connection) through Cilia — two endpoints made by the real agent, local delivery by
// bpf_redirect_peer — against the baseline of the same run: two pods behind a bare veth pair
// each, routed by the node's kernel with no programs. Everything lives in a private "node"
// netns. Rounds alternate between the two so machine noise hits both; medians are reported
// with the Cilia/bare ratio (target ≥ 0.9 for throughput). Needs root, iperf3 and a build.
// usage: node test/bench/pod-throughput.mjs [seconds per run] [rounds]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const agentMain = join(repo, 'apps/agent/dist/main.js');
if (!existsSync(agentMain)) throw new Error(`${agentMain} is missing: build first (npx nx run-many -t build)`);

const tag = randomBytes(3).toString('hex');
const nodeNs = `cilia-bench-tp-${tag}`;
const k8sNs = `tp${tag}`;
const bare = [`cilia-bench-bare-a-${tag}`, `cilia-bench-bare-b-${tag}`];
const bareIps = ['10.251.0.10', '10.251.0.11'];
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-tp-'));
const socket = join(dir, 'cilia.sock');
const pins = `/sys/fs/bpf/cilia-bench-tp-${tag}`;
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const children = [];

const RR_SERVER = `require('net').createServer(s=>{s.setNoDelay(true);s.on('data',d=>s.write(d));s.on('error',()=>{})}).listen(+process.argv[1],()=>console.log('ready'))`;
const RR_CLIENT = `const [h,p,ms]=[process.argv[1],+process.argv[2],+process.argv[3]];let n=0,end=0;const s=require('net').connect(p,h,()=>{s.setNoDelay(true);end=Date.now()+ms;s.write('x')});
s.on('data',()=>{n++;if(Date.now()<end)s.write('x');else{console.log(n/(ms/1000));process.exit(0)}})`;

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, path, method, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function background(ns, args) {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function waitFor(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function servers(ns) {
  background(ns, ['iperf3', '-s', '-p', '5201']);
  const rr = background(ns, [process.execPath, '-e', RR_SERVER, '5300']);
  await new Promise((resolve) => rr.stdout.on('data', resolve));
  await new Promise((r) => setTimeout(r, 300));
}

function throughput(ns, ip) {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'iperf3', '-c', ip, '-p', '5201', '-t', String(seconds), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 from ${ns} to ${ip} failed: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

function requestResponse(ns, ip) {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', RR_CLIENT, ip, '5300', String(Math.min(seconds, 3) * 1000)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`request/response from ${ns} to ${ip} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  sh('ip', ['netns', 'add', nodeNs]);
  sh('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', nodeNs, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
  sh('ip', ['-n', nodeNs, 'addr', 'add', '172.31.251.1/24', 'dev', 'ext0']);
  sh('ip', ['-n', nodeNs, 'link', 'set', 'ext0', 'up']);
  sh('ip', ['-n', nodeNs, 'route', 'add', 'default', 'via', '172.31.251.2']);

  // Baseline: the same topology without Cilia — veths routed by the node's kernel.
  sh('ip', ['netns', 'exec', nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [i, ns] of bare.entries()) {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', nodeNs, 'link', 'add', `bare${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('ip', ['-n', nodeNs, 'link', 'set', `bare${i}`, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${bareIps[i]}/32`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
    sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    const mac = JSON.parse(sh('ip', ['-n', nodeNs, '-j', 'link', 'show', `bare${i}`]))[0].address;
    sh('ip', ['-n', ns, 'neigh', 'add', '169.254.1.1', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    sh('ip', ['-n', nodeNs, 'route', 'add', `${bareIps[i]}/32`, 'dev', `bare${i}`]);
  }

  writeFileSync(join(dir, 'agent.yaml'), `agent: {apiSocket: ${socket}, stateDir: ${join(dir, 'state')}, metricsAddress: '', bpfRoot: ${pins}, logLevel: warn}\nipam: {podCIDRs: [10.250.0.0/24]}\n`);
  const agent = spawn('nsenter', [`--net=/run/netns/${nodeNs}`, process.execPath, agentMain, '--config', join(dir, 'agent.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(agent);
  let agentErr = '';
  agent.stderr.on('data', (d) => (agentErr += d));
  await waitFor(async () => (await api('GET', '/v1/status')).body.health === 'ok', 'the agent').catch((err) => {
    throw new Error(`${err.message}: ${agentErr}`);
  });
  const pods = [];
  for (const name of ['client', 'server']) {
    const r = await api('POST', '/v1/endpoints', { name, namespace: k8sNs });
    if (r.status !== 201) throw new Error(`endpoint ${name}: ${JSON.stringify(r.body)}`);
    pods.push(r.body);
  }
  const cilia = { client: pods[0].netns.replace('/run/netns/', ''), server: pods[1].ipv4 };
  const baseline = { client: bare[0], server: bareIps[1] };
  await servers(pods[1].netns.replace('/run/netns/', ''));
  await servers(bare[1]);

  const results = { cilia: { gbps: [], rr: [] }, bare: { gbps: [], rr: [] } };
  for (let round = 0; round < rounds; round++) {
    for (const [name, setup] of round % 2 === 0 ? [['cilia', cilia], ['bare', baseline]] : [['bare', baseline], ['cilia', cilia]]) {
      results[name].gbps.push(throughput(setup.client, setup.server));
      results[name].rr.push(requestResponse(setup.client, setup.server));
    }
  }
  const c = { gbps: median(results.cilia.gbps), rr: median(results.cilia.rr) };
  const b = { gbps: median(results.bare.gbps), rr: median(results.bare.rr) };
  console.log(`pod → pod on one node, ${rounds} rounds × ${seconds} s, medians`);
  console.log(`  TCP throughput     bare veth (baseline) ${b.gbps.toFixed(2)} Gbit/s   Cilia ${c.gbps.toFixed(2)} Gbit/s   ×${(c.gbps / b.gbps).toFixed(2)} (target ≥ 0.90)`);
  console.log(`  request/response   bare veth (baseline) ${Math.round(b.rr)} /s   Cilia ${Math.round(c.rr)} /s   ×${(c.rr / b.rr).toFixed(2)}`);
}

try {
  await main();
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  for (const ns of spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0])) {
    if (ns.startsWith(`cilia_${k8sNs}_`)) spawnSync('ip', ['netns', 'delete', ns]);
  }
  for (const ns of [...bare, nodeNs]) spawnSync('ip', ['netns', 'delete', ns]);
  rmSync(pins, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
