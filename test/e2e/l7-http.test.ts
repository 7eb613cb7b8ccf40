// L7 HTTP policy through the real agent with @cilia/plugin-l7-proxy (in a private "node"
// network namespace): a CiliumNetworkPolicy with rules.http on a server pod; curl in the client
// pods' namespaces, a Node HTTP server in the server's. The datapath sends the client's
// connection to the transparent proxy (bpf_sk_assign), which judges each request of a keep-alive
// connection and forwards the allowed ones to the original destination over a connection marked
// with the client's identity.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AgentStatus, Endpoint } from '@cilia/core';
import type { ProxyProcessStatus } from '@cilia/plugin-l7-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AGENT_MAIN, api, createNodeNetns, spawnInNetns, testPinRoot, until, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-l7-${RUN}`;
const K8S_NS = `l7${RUN}`;
const PORT = 8080;
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const podNetns = (pod: string) => `cilia_${K8S_NS}_${pod}`;

const pod = (name: string, labels: Record<string, string>) =>
  stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: K8S_NS, labels }, spec: { containers: [{ name: 'main', image: 'busybox' }] } });

const policy = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'l7-http', namespace: K8S_NS },
  spec: {
    endpointSelector: { matchLabels: { app: 'server' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'client' } }],
        toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/public/.*' }, { path: '/api/.*', headers: ['X-Token: [0-9]+'] }] } }],
      },
    ],
  },
};

// Answers every request with its method and URL (and the client address it saw).
const SERVER = `require('http').createServer((q, s) => { s.setHeader('content-type', 'text/plain'); s.end(q.method + ' ' + q.url + ' from ' + q.socket.remoteAddress); }).listen(${PORT}, () => console.log('listening'));`;

interface CurlResult {
  readonly code: number;
  /** Per URL: status and whether a new connection was opened for it. */
  readonly responses: { status: number; connects: number; body: string }[];
  readonly output: string;
}

/**
 * curl in a pod's namespace: one invocation, each group of arguments a request of its own
 * (`--next`), on one reused connection where it can.
 */
function curl(from: string, ...groups: string[][]): CurlResult {
  const marker = '##';
  const common = ['-s', '--connect-timeout', '2', '-m', '5', '-w', `${marker}%{http_code} %{num_connects}\n`];
  const args = groups.flatMap((g, i) => [...(i > 0 ? ['--next'] : []), ...common, ...g]);
  const r = tryRun('ip', ['netns', 'exec', podNetns(from), 'curl', ...args]);
  const responses = r.stdout
    .split('\n')
    .filter((l) => l.includes(marker))
    .map((l) => {
      const [body, tail] = l.split(marker) as [string, string];
      const [status, connects] = tail.split(' ').map(Number) as [number, number];
      return { status, connects, body };
    });
  return { code: r.status ?? -1, responses, output: r.stdout + r.stderr };
}

describe('L7 HTTP policy (real agent, transparent proxy, curl between pods)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-l7-e2e-'));
  const manifests = join(dir, 'manifests');
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  let agent: NetnsProcess | undefined;
  let server: NetnsProcess | undefined;
  let serverIp = '';
  let clientIp = '';
  let url = '';

  const endpoints = async () => (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body;
  const proxyStatus = async () => (await api<{ process: ProxyProcessStatus }>(socket, 'GET', '/v1/l7proxy')).body.process;

  /** A Node client in the client pod keeping one keep-alive connection: `get(path)` answers its status and local port. */
  function keepAliveSession() {
    const script = `const http = require('http'); const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      require('readline').createInterface({ input: process.stdin }).on('line', (path) => {
        const req = http.get({ host: '${serverIp}', port: ${PORT}, path, agent }, (res) => {
          res.resume();
          res.on('end', () => console.log(JSON.stringify({ path, status: res.statusCode, port: req.socket.localPort })));
        });
        req.on('error', (e) => console.log(JSON.stringify({ path, error: e.message })));
      });`;
    const child = spawn('nsenter', [`--net=/run/netns/${podNetns('client')}`, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const waiting: Array<(answer: unknown) => void> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(JSON.parse(line)));
    return {
      get: (path: string) =>
        new Promise<unknown>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no answer for ${path}`)), 10_000);
          waiting.push((a) => (clearTimeout(timer), resolve(a)));
          child.stdin!.write(`${path}\n`);
        }) as Promise<{ path: string; status: number; port: number }>,
      close: () => child.kill('SIGKILL'),
    };
  }

  beforeAll(async () => {
    mkdirSync(manifests);
    createNodeNetns(NODE_NS, '172.31.232');
    for (const [name, labels] of [['server', { app: 'server' }], ['client', { app: 'client' }], ['other', { app: 'other' }]] as const) {
      writeFileSync(join(manifests, `${name}.yaml`), pod(name, labels));
    }
    writeFileSync(join(manifests, 'policy.yaml'), stringify(policy));
    writeFileSync(
      join(dir, 'agent.yaml'),
      stringify({
        agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot, nodeName: `l7-${RUN}` },
        ipam: { podCIDRs: ['10.244.33.0/24'] },
        manifests: { directory: manifests, debounceMs: 50 },
        plugins: ['@cilia/plugin-l7-proxy'],
      }),
    );
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', join(dir, 'agent.yaml')]);
    const ready = await until('three ready pods with the policy', async () => {
      const eps = await endpoints().catch(() => []);
      const rev = (await api<{ revision: number; rules: unknown[] }>(socket, 'GET', '/v1/policy').catch(() => undefined))?.body;
      if (!rev?.rules?.length) return undefined;
      return eps.length === 3 && eps.every((e) => e.state === 'ready' && e.policyRevision >= rev.revision) ? eps : undefined;
    }, 40_000).catch((err: Error) => {
      throw new Error(`${err.message}; agent: ${agent!.output().slice(-4000)}`);
    });
    serverIp = ready.find((e) => e.name === 'server')!.ipv4!;
    clientIp = ready.find((e) => e.name === 'client')!.ipv4!;
    url = `http://${serverIp}:${PORT}`;
    server = spawnInNetns(podNetns('server'), process.execPath, ['-e', SERVER]);
    await until('the server', async () => (server!.output().includes('listening') ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    for (const p of [server, agent]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all([server?.done, agent?.done]);
    // The proxy process outlives an agent killed like this one, by design.
    try {
      process.kill(Number(readFileSync(join(dir, 'state', 'l7-proxy.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // gone already
    }
    for (const name of ['server', 'client', 'other']) tryRun('ip', ['netns', 'delete', podNetns(name)]);
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /public/x passes, GET /private and POST /public/x get 403 "Access denied", all on one keep-alive connection', () => {
    const r = curl('client', [`${url}/public/x`], [`${url}/private`], ['-X', 'POST', `${url}/public/x`], [`${url}/public/y`]);
    expect(r.code, agent!.output().slice(-3000)).toBe(0);
    expect(r.responses.length, r.output).toBe(4);
    expect(r.responses.map((x) => x.status)).toEqual([200, 403, 403, 200]);
    expect(r.responses[0]!.body).toMatch(/^GET \/public\/x from /);
    expect(r.responses[1]!.body).toBe('Access denied');
    expect(r.responses[2]!.body).toBe('Access denied');
    expect(r.responses[3]!.body).toMatch(/^GET \/public\/y from /);
    // The server saw the proxy's upstream connection (from the node), not the client's.
    expect(r.responses[0]!.body).not.toContain(clientIp);
    // One connection for all four: a denied request leaves it usable.
    expect(r.responses.map((x) => x.connects)).toEqual([1, 0, 0, 0]);
  });

  it('the header rule admits X-Token: 123 and refuses X-Token: abc and no header', () => {
    expect(curl('client', ['-H', 'X-Token: 123', `${url}/api/items`]).responses.map((x) => x.status)).toEqual([200]);
    expect(curl('client', ['-H', 'X-Token: abc', `${url}/api/items`]).responses.map((x) => [x.status, x.body])).toEqual([[403, 'Access denied']]);
    expect(curl('client', [`${url}/api/items`]).responses.map((x) => x.status)).toEqual([403]);
  });

  it('a pod without the label cannot connect at all', () => {
    const r = curl('other', [`${url}/public/x`]);
    expect(r.code).toBe(28); // connect timeout: the SYN is dropped by policy
    expect(r.responses.map((x) => x.status)).toEqual([0]);
  });

  it('a malformed request gets 400 on its own connection and the proxy serves the next', () => {
    const bad = tryRun('ip', ['netns', 'exec', podNetns('client'), 'bash', '-c', `exec 3<>/dev/tcp/${serverIp}/${PORT}; printf 'GARBAGE\\r\\n\\r\\n' >&3; timeout 3 cat <&3`]);
    expect(bad.stdout).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(curl('client', [`${url}/public/z`]).responses.map((x) => x.status)).toEqual([200]);
  });

  it('cilia status shows the proxy, its ports and the redirected connections', async () => {
    const s = (await api<AgentStatus>(socket, 'GET', '/v1/status')).body;
    const note = (s.notes ?? []).find((n) => n.startsWith('l7-proxy') || n.includes('L7 proxy'));
    expect(note).toMatch(/^l7-proxy: L7 proxy process pid \d+ on 127\.0\.0\.1: http ingress 15001, http egress 15002; (\d+) connections redirected/);
    expect(Number(/; (\d+) connections redirected/.exec(note!)![1])).toBeGreaterThan(0);
  });

  it('an agent SIGKILL leaves the proxy process serving and judging a keep-alive session; the restarted agent adopts it', async () => {
    const before = await proxyStatus();
    expect(before.running).toBe(true);
    const session = keepAliveSession();
    try {
      const first = await session.get('/public/a');
      expect(first.status).toBe(200);
      agent!.child.kill('SIGKILL');
      await agent!.done;
      // The agent is gone: the same connection is still served and judged.
      expect(await session.get('/public/b')).toEqual({ path: '/public/b', status: 200, port: first.port });
      expect(await session.get('/private')).toEqual({ path: '/private', status: 403, port: first.port });
      agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', join(dir, 'agent.yaml')]);
      await until('the agent back with its endpoints', async () => {
        const eps = await endpoints().catch(() => []);
        return eps.length === 3 && eps.every((e) => e.state === 'ready') ? true : undefined;
      }, 40_000);
      const after = await proxyStatus();
      expect(after).toMatchObject({ running: true, adopted: true, pid: before.pid, restarts: 0 });
      expect(await session.get('/public/c')).toEqual({ path: '/public/c', status: 200, port: first.port });
      expect(await session.get('/private')).toEqual({ path: '/private', status: 403, port: first.port });
    } finally {
      session.close();
    }
  }, 60_000);

  it("the proxy process's own crash is restarted and reported in cilia status; the new one has the rules", async () => {
    const before = await proxyStatus();
    process.kill(before.pid!, 'SIGKILL');
    const after = await until('a new proxy process', async () => {
      const s = await proxyStatus().catch(() => undefined);
      return s?.running && s.pid !== before.pid ? s : undefined;
    });
    expect(after.restarts).toBe(1);
    const note = ((await api<AgentStatus>(socket, 'GET', '/v1/status')).body.notes ?? []).find((n) => n.includes('L7 proxy process'));
    expect(note).toMatch(new RegExp(`L7 proxy process pid ${after.pid}, restarted 1 time \\(last: `));
    expect(curl('client', [`${url}/public/x`], [`${url}/private`]).responses.map((x) => x.status)).toEqual([200, 403]);
  }, 30_000);
});
