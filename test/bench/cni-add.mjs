#!/usr/bin/env node
// CNI ADD latency: 200 sequential ADDs through cilia-cni (exec'd as a runtime execs it, via the
// launcher `cilia-cni install` writes) against the real agent, each into its own netns; p50/p99
// against the targets (p50 ≤ 50 ms, p99 ≤ 150 ms). Baselines from the same run: a bare node
// process start (the floor of any Node-based plugin) and POST /v1/endpoints straight to the
// agent's socket (the agent's own share). Needs root and built dist/ (npx nx run-many -t build).
// usage: node test/bench/cni-add.mjs [count]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const count = Number(process.argv[2] ?? 200);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const agentMain = join(repo, 'apps/agent/dist/main.js');
const cniMain = join(repo, 'apps/cni/dist/main.js');
for (const f of [agentMain, cniMain]) if (!existsSync(f)) throw new Error(`${f} is missing: build first (npx nx run-many -t build)`);

const tag = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-cni-'));
const socket = join(dir, 'cilia.sock');
const pins = `/sys/fs/bpf/cilia-bench-cni-${tag}`;
const egress = `cnibe${tag}`;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const netns = [];
let agent;

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath: socket, path, method, agent: false, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function run(file, args, env, stdin) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(stdin);
  });
}

try {
  ip('link', 'add', egress, 'type', 'veth', 'peer', 'name', `cnibp${tag}`);
  ip('addr', 'add', '198.19.255.1/32', 'dev', egress);
  ip('link', 'set', egress, 'up');
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    [
      'agent:',
      `  apiSocket: ${socket}`,
      `  stateDir: ${dir}/state`,
      `  bpfRoot: ${pins}`,
      '  metricsAddress: ""',
      'ipam:',
      '  podCIDRs: [10.251.0.0/22]',
      'datapath:',
      `  egressDevice: ${egress}`,
      '  masquerade: false',
      '',
    ].join('\n'),
  );
  agent = spawn(process.execPath, [agentMain, '--config', config], { stdio: 'ignore' });
  for (;;) {
    const s = await api('GET', '/v1/status').catch(() => undefined);
    if (s?.body?.health === 'ok') break;
    if (agent.exitCode !== null) throw new Error('the agent exited during start');
    await new Promise((r) => setTimeout(r, 20));
  }
  const binDir = join(dir, 'bin');
  execFileSync(process.execPath, [cniMain, 'install', '--dir', binDir]);
  const plugin = join(binDir, 'cilia-cni');
  for (let i = 0; i < count + 50; i++) {
    const name = `cnib-${tag}-${i}`;
    ip('netns', 'add', name);
    netns.push(name);
  }
  const conf = JSON.stringify({ cniVersion: '1.1.0', name: 'cilia', type: 'cilia-cni', socket });
  const env = (i, command) => ({ CNI_COMMAND: command, CNI_CONTAINERID: `bench${tag}${i}`, CNI_NETNS: `/run/netns/${netns[i]}`, CNI_IFNAME: 'eth0', CNI_PATH: binDir });

  // Warm-up: the first endpoint loads the base objects into the kernel.
  await api('POST', '/v1/endpoints', { name: `warm-${tag}`, namespace: 'bench', labels: {}, netns: `/run/netns/${netns[count + 49]}`, containerId: `warm${tag}` });
  await api('DELETE', `/v1/endpoints?containerId=warm${tag}&interfaceName=eth0`);

  const add = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const r = await run(plugin, [], env(i, 'ADD'), conf);
    add.push(ms(t0));
    if (r.code !== 0) throw new Error(`ADD ${i} failed: ${r.out}`);
  }
  const del = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const r = await run(plugin, [], env(i, 'DEL'), conf);
    del.push(ms(t0));
    if (r.code !== 0) throw new Error(`DEL ${i} failed: ${r.out}`);
  }
  // Baselines in the same run.
  const direct = [];
  for (let i = count; i < count + 49; i++) {
    const t0 = process.hrtime.bigint();
    const r = await api('POST', '/v1/endpoints', { name: `direct-${i}`, namespace: 'bench', labels: {}, netns: `/run/netns/${netns[i]}`, containerId: `direct${tag}${i}` });
    direct.push(ms(t0));
    if (r.status !== 201) throw new Error(`POST ${i}: ${JSON.stringify(r.body)}`);
    await api('DELETE', `/v1/endpoints?containerId=direct${tag}${i}&interfaceName=eth0`);
  }
  const bare = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    await run(process.execPath, ['-e', ''], {}, '');
    bare.push(ms(t0));
  }
  const version = [];
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    await run(plugin, [], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}');
    version.push(ms(t0));
  }
  const line = (label, xs) => `${label.padEnd(46)} p50 ${pct(xs, 50).toFixed(1).padStart(6)} ms   p99 ${pct(xs, 99).toFixed(1).padStart(6)} ms   (n=${xs.length})`;
  console.log(line(`cilia-cni ADD (exec + agent), sequential`, add));
  console.log(line('cilia-cni DEL', del));
  console.log(line('baseline: POST /v1/endpoints direct to agent', direct));
  console.log(line('baseline: cilia-cni VERSION (no agent call)', version));
  console.log(line('baseline: bare node process start → exit', bare));
  const p50 = pct(add, 50);
  const p99 = pct(add, 99);
  console.log(`targets: p50 ≤ 50 ms → ${p50 <= 50 ? 'met' : 'NOT met'}; p99 ≤ 150 ms → ${p99 <= 150 ? 'met' : 'NOT met'}`);
} finally {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.on('close', r));
  }
  for (const name of netns) {
    try {
      ip('netns', 'del', name);
    } catch {
      // already gone
    }
  }
  try {
    ip('link', 'del', egress);
  } catch {
    // already gone
  }
  // Host-side veths of endpoints still attached (only after a failure) go with their netns' peers.
  rmSync(dir, { recursive: true, force: true });
  rmSync(pins, { recursive: true, force: true });
}
