import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentStatus, PluginStatus } from '@cilia/core';

/** One canned answer of the fixture agent. */
export interface Route {
  readonly status?: number;
  /** A value to send as JSON, or a raw string to send as is. */
  readonly body: unknown;
}

/** A real HTTP server on a real unix socket, answering like the agent's API would. */
export interface FixtureAgent {
  readonly socketPath: string;
  /** Paths requested so far, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Makes a fresh temp directory; the caller removes it with {@link removeDir}. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cilia-cli-test-'));
}

export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Starts a fixture agent listening on `socketPath`, answering `routes` (404 otherwise). */
export async function startFixtureAgent(socketPath: string, routes: Record<string, Route>): Promise<FixtureAgent> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const route = req.method === 'GET' ? routes[path] : undefined;
    const status = route ? (route.status ?? 200) : 404;
    const body = route ? route.body : { error: `no route for ${req.method} ${path}`, path };
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    socketPath,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Leaves a unix socket file with nobody listening on it (its owner was SIGKILLed), the state
 * an agent that crashed leaves behind: connecting gives ECONNREFUSED.
 */
export async function makeStaleSocket(socketPath: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`],
    { stdio: 'ignore' },
  );
  await once(child, 'exit');
}

export const plugins: PluginStatus[] = [
  {
    name: '@cilia/plugin-ipam-host',
    version: '0.1.0',
    origin: 'default',
    state: 'started',
    provides: ['Ipam'],
    requires: [],
  },
  {
    name: 'cilia-plugin-example',
    version: '2.3.4',
    origin: 'configured',
    state: 'started',
    provides: ['Encapsulation', 'L7Proxy'],
    requires: ['Ipam', 'Datapath'],
    slots: [
      { attach: 'from-netdev', slot: 'pre', object: 'example', program: 'example_receive' },
      { attach: 'from-container', slot: 'forward', object: 'example', program: 'example_send' },
    ],
  },
];

export const status: AgentStatus = {
  version: '0.1.0',
  apiVersion: '1.0.0',
  node: 'node-a',
  uptimeSeconds: 3 * 3600 + 7 * 60 + 5,
  startedAt: '2026-11-26T10:00:00.000Z',
  health: 'ok',
  problems: [],
  plugins,
  bpf: {
    kernel: '6.18.0',
    bpffs: { mounted: true, path: '/sys/fs/bpf' },
    btf: true,
    jit: true,
    supported: ['ringbuf', 'lpm_trie'],
    missing: ['bpf_sk_assign'],
  },
};

export const configView = {
  sources: ['/opt/cilia/presets/standalone.yaml', '/etc/cilia/agent.yaml'],
  config: {
    node: { name: 'node-a' },
    api: { socket: '/var/run/cilia/cilia.sock' },
    plugins: ['cilia-plugin-example'],
    'cilia-plugin-example': { mtu: 1450, tunnel: 'vxlan' },
  },
};

/** The three endpoints the CLI reads, answered with the data above. */
export const okRoutes: Record<string, Route> = {
  '/v1/status': { body: status },
  '/v1/plugins': { body: plugins },
  '/v1/config': { body: configView },
};
