#!/usr/bin/env node
// Time from process start to a ready GET /v1/status with the standalone preset, against the
// floor of starting a bare Node process, measured in the same run.
// usage: node test/bench/agent-startup.mjs [runs]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 10);
const main = fileURLToPath(new URL('../../apps/agent/dist/main.js', import.meta.url));

const status = (socket) =>
  new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/v1/status' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', () => resolve(undefined));
    req.end();
  });

async function agentReady() {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-'));
  const socket = join(dir, 'cilia.sock');
  const config = join(dir, 'agent.yaml');
  const pins = `/sys/fs/bpf/cilia-bench-${process.pid}`;
  writeFileSync(config, `extends: standalone\nagent:\n  apiSocket: ${socket}\n  stateDir: ${dir}/state\n  bpfRoot: ${pins}\n  metricsAddress: ""\n`);
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [main, '--config', config], { stdio: 'ignore' });
  for (;;) {
    const s = await status(socket);
    if (s && s.health === 'ok') break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
  rmSync(dir, { recursive: true, force: true });
  rmSync(pins, { recursive: true, force: true });
  return ms;
}

async function bareNode() {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.on('close', r));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const agent = [];
const node = [];
for (let i = 0; i < runs; i++) {
  node.push(await bareNode());
  agent.push(await agentReady());
}
const a = median(agent);
const n = median(node);
console.log(`agent start → ready /v1/status (standalone preset): median ${a.toFixed(0)} ms over ${runs} runs (min ${Math.min(...agent).toFixed(0)}, max ${Math.max(...agent).toFixed(0)})`);
console.log(`baseline: bare node process start → exit: median ${n.toFixed(0)} ms`);
console.log(`ratio agent/bare node: ${(a / n).toFixed(2)}x; target: under 1500 ms → ${a < 1500 ? 'met' : 'NOT met'}`);
