#!/usr/bin/env node
// HTTP/1.1 keep-alive through the L7 proxy against the same client and server directly, same
// run: the real agent with @cilia/plugin-l7-proxy in a private "node" netns, a server pod
// listening on two ports — 8080 behind a CNP rules.http (proxied), 8081 allowed at L4 (direct,
// the baseline) — and autocannon in the client pod. Rounds alternate the two; reported: the
// median maximum requests/s of each and their ratio, then the p50/p99 latency of both at half
// the direct maximum rate (the proxy's added p99). Needs root and a build.
// usage: node test/bench/l7-http.mjs [seconds per run] [rounds] [connections]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const connections = Number(process.argv[4] ?? 8);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const agentMain = join(repo, 'apps/agent/dist/main.js');
if (!existsSync(agentMain)) throw new Error(`${agentMain} is missing: build first (npx nx run-many -t build)`);
const autocannon = createRequire(join(repo, 'package.json')).resolve('autocannon/autocannon.js');

const tag = randomBytes(3).toString('hex');
const nodeNs = `cilia-bench-l7-${tag}`;
const k8sNs = `l7b${tag}`;
const podNs = (pod) => `cilia_${k8sNs}_${pod}`;
const dir = mkdtempSync(join(tmpdir(), 'cilia-bench-l7-'));
const manifests = join(dir, 'manifests');
const socket = join(dir, 'cilia.sock');
const pins = `/sys/fs/bpf/cilia-bench-l7-${tag}`;
const ip = (args) => spawnSync('ip', args, { encoding: 'utf8' });
const children = [];

function api(path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(text ? JSON.parse(text) : undefined));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(what, probe, timeoutMs = 60_000) {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  try {
    const pid = Number(readFileSync(join(dir, 'state', 'l7-proxy.pid'), 'utf8'));
    if (pid) process.kill(pid, 'SIGKILL');
  } catch {}
  for (const pod of ['server', 'client']) ip(['netns', 'delete', podNs(pod)]);
  ip(['netns', 'delete', nodeNs]);
  rmSync(pins, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}

/** One autocannon run from the client pod; `rate`: requests/s over all connections (0: as fast as it goes). */
function run(port, rate = 0) {
  const args = ['netns', 'exec', podNs('client'), process.execPath, autocannon, '-j', '-c', String(connections), '-d', String(seconds), ...(rate ? ['-R', String(Math.round(rate))] : []), `http://${serverIp}:${port}/bench`];
  const r = spawnSync('ip', args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const out = JSON.parse(r.stdout);
  if (out.errors || out.non2xx) throw new Error(`port ${port}: ${out.errors} errors, ${out.non2xx} non-2xx`);
  return { rps: out.requests.average, p50: out.latency.p50, p99: out.latency.p99 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let serverIp;
try {
  mkdirSync(manifests);
  ip(['netns', 'add', nodeNs]);
  ip(['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  ip(['-n', nodeNs, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
  ip(['-n', nodeNs, 'addr', 'add', '172.31.234.1/24', 'dev', 'ext0']);
  ip(['-n', nodeNs, 'link', 'set', 'ext0', 'up']);
  ip(['-n', nodeNs, 'route', 'add', 'default', 'via', '172.31.234.2']);
  const pod = (name, app) => `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${k8sNs}, labels: {app: ${app}}}\nspec: {containers: [{name: main, image: busybox}]}\n`;
  writeFileSync(join(manifests, 'server.yaml'), pod('server', 'server'));
  writeFileSync(join(manifests, 'client.yaml'), pod('client', 'client'));
  writeFileSync(
    join(manifests, 'policy.yaml'),
    JSON.stringify({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'bench', namespace: k8sNs },
      spec: {
        endpointSelector: { matchLabels: { app: 'server' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'client' } }],
            toPorts: [
              { ports: [{ port: '8080', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/bench' }] } },
              { ports: [{ port: '8081', protocol: 'TCP' }] },
            ],
          },
        ],
      },
    }),
  );
  writeFileSync(
    join(dir, 'agent.yaml'),
    JSON.stringify({
      agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot: pins, nodeName: `l7b-${tag}`, logLevel: 'warn' },
      ipam: { podCIDRs: ['10.244.34.0/24'] },
      manifests: { directory: manifests, debounceMs: 50 },
      plugins: ['@cilia/plugin-l7-proxy'],
    }),
  );
  // nsenter, not `ip netns exec`: the agent's pod namespaces must be mounted where ip(8) sees them.
  const agent = spawn('nsenter', [`--net=/run/netns/${nodeNs}`, process.execPath, agentMain, '--config', join(dir, 'agent.yaml')], { stdio: 'ignore' });
  children.push(agent);
  const eps = await until('two ready pods with the policy', async () => {
    const pol = await api('/v1/policy');
    const list = await api('/v1/endpoints');
    return pol?.rules?.length && list?.length === 2 && list.every((e) => e.state === 'ready' && e.policyRevision >= pol.revision) ? list : undefined;
  });
  serverIp = eps.find((e) => e.name === 'server').ipv4;
  const server = spawn('ip', ['netns', 'exec', podNs('server'), process.execPath, '-e', "const h = (q, s) => s.end('ok'); for (const p of [8080, 8081]) require('http').createServer({ keepAliveTimeout: 60000 }, h).listen(p);"], { stdio: 'ignore' });
  children.push(server);
  await until('the server', async () => (ip(['netns', 'exec', podNs('client'), 'curl', '-s', '-m', '2', `http://${serverIp}:8081/`]).stdout === 'ok' ? true : undefined), 20_000).catch((err) => {
    console.error(ip(['netns', 'exec', podNs('client'), 'curl', '-sv', '-m', '2', `http://${serverIp}:8081/`]).stderr, ip(['-n', podNs('server'), 'addr']).stdout);
    throw err;
  });
  run(8080, 0); // warm-up: JIT, the proxy's first connections
  const direct = [];
  const proxied = [];
  for (let i = 0; i < rounds; i++) {
    direct.push(run(8081).rps);
    proxied.push(run(8080).rps);
  }
  const maxDirect = median(direct);
  const maxProxied = median(proxied);
  const half = maxDirect / 2;
  const lat = { direct: [], proxied: [] };
  for (let i = 0; i < rounds; i++) {
    lat.direct.push(run(8081, half));
    lat.proxied.push(run(8080, half));
  }
  const p = (xs, k) => median(xs.map((x) => x[k]));
  const fmt = (n) => n.toFixed(0);
  const load = loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`HTTP/1.1 keep-alive, ${connections} connections, ${seconds} s runs, ${rounds} rounds, load ${load}`);
  console.log(`max requests/s   direct ${fmt(maxDirect)}  proxied ${fmt(maxProxied)}  ratio ${(maxProxied / maxDirect).toFixed(2)}`);
  console.log(`at ${fmt(half)} req/s  direct p50 ${p(lat.direct, 'p50')} ms p99 ${p(lat.direct, 'p99')} ms  proxied p50 ${p(lat.proxied, 'p50')} ms p99 ${p(lat.proxied, 'p99')} ms  added p99 ${(p(lat.proxied, 'p99') - p(lat.direct, 'p99')).toFixed(2)} ms`);
} finally {
  cleanup();
}
