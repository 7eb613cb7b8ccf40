import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentStatus } from '@cilia/core';
import { stringify } from 'yaml';

/** Repository root. */
export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The built agent entry point (the bootstrap builds it before tests run). */
export const AGENT_MAIN = join(REPO, 'apps/agent/dist/main.js');

export interface ProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A process running inside a network namespace, its output collected. */
export interface NetnsProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code when the process has exited. */
  readonly done: Promise<number | null>;
  /** Standard output and error so far. */
  output(): string;
}

/** Starts `cmd args` inside `/run/netns/<ns>` (through nsenter), collecting its output. */
export function spawnInNetns(ns: string, cmd: string, args: readonly string[]): NetnsProcess {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, done, output: () => out };
}

/**
 * Waits until the agent on `socket` (running as `agent`) reports health `ok`; throws with its
 * output when it exits first, reports another health, or takes longer than `timeoutMs`.
 */
export async function waitHealthy(socket: string, agent: NetnsProcess, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
    const status = await api<AgentStatus>(socket, 'GET', '/v1/status').catch(() => undefined);
    if (status?.body.health === 'ok') return;
    if (status && status.body.health !== 'starting') throw new Error(`agent health ${status.body.health}: ${status.body.problems.join('; ')}`);
    if (Date.now() > deadline) throw new Error(`agent not ready: ${agent.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deletes the network namespaces of the pods of a Kubernetes namespace (`cilia_<namespace>_<pod>`). */
export function deletePodNetns(namespace: string): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  for (const ns of list.split('\n').map((l) => l.split(' ')[0]!)) {
    if (ns.startsWith(`cilia_${namespace}_`)) spawnSync('ip', ['netns', 'delete', ns]);
  }
}

/** A pin root of its own for the agent of one test (under bpffs), named after its temp dir. */
export function testPinRoot(tempDir: string): string {
  return `/sys/fs/bpf/cilia-test-${basename(tempDir)}`;
}

/** Runs the agent to completion (for refused configs); kills it after `timeoutMs`. */
export function runAgent(args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<ProcessResult> {
  const child = spawn(process.execPath, [AGENT_MAIN, ...args], { cwd: options.cwd ?? REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  return collect(child, options.timeoutMs ?? 20_000);
}

function collect(child: ChildProcess, timeoutMs: number, onStdout?: (text: string) => void): Promise<ProcessResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    onStdout?.(stdout);
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolvePromise) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** One request on the agent's API socket; the JSON body (if any) parsed. */
export function api<T>(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return new Promise((resolvePromise, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath: socket, path, method, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolvePromise({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** GET a path on the agent's API socket and parse the JSON body. */
export function apiGet<T>(socket: string, path: string): Promise<{ status: number; body: T }> {
  return api<T>(socket, 'GET', path);
}

export interface RunningAgent {
  /** Temp directory holding the config, socket and state; removed by stop(). */
  readonly dir: string;
  readonly configFile: string;
  readonly socket: string;
  readonly process: ChildProcess;
  /** Standard output (JSON log lines) so far. */
  output(): string;
  status(): Promise<AgentStatus>;
  /** Sends `signal` (default SIGTERM), waits for exit, removes the temp directory. */
  stop(signal?: NodeJS.Signals): Promise<ProcessResult>;
}

export interface StartAgentOptions {
  /** The config as an object (written as YAML) or YAML text. `agent.apiSocket`, `stateDir` and `metricsAddress` default to the temp dir / disabled. */
  readonly config?: Record<string, unknown> | string;
  /** Directory to write the config file into (plugin resolution starts there). Default: a new temp dir. */
  readonly configDir?: string;
  /** How long to wait for every plugin to reach a final state. */
  readonly readyTimeoutMs?: number;
}

/** Starts the real agent on a private socket and waits until its status reports readiness. */
export async function startAgent(options: StartAgentOptions = {}): Promise<RunningAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-agent-'));
  const socket = join(dir, 'cilia.sock');
  const configDir = options.configDir ?? dir;
  const configFile = join(configDir, `agent-${process.pid}-${Date.now()}.yaml`);
  const bpfRoot = testPinRoot(dir);
  const base = { agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot } };
  const text =
    typeof options.config === 'string'
      ? options.config
      : stringify({ ...base, ...options.config, agent: { ...base.agent, ...((options.config?.agent as object) ?? {}) } });
  writeFileSync(configFile, text);
  const child = spawn(process.execPath, [AGENT_MAIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const done = collect(child, 120_000, (text) => (stdout = text));
  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(bpfRoot, { recursive: true, force: true });
    if (configDir !== dir) rmSync(configFile, { force: true });
  };
  const agent: RunningAgent = {
    dir,
    configFile,
    socket,
    process: child,
    output: () => stdout,
    status: async () => (await apiGet<AgentStatus>(socket, '/v1/status')).body,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const result = await done;
      cleanup();
      return result;
    },
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  let exited: ProcessResult | undefined;
  done.then((r) => (exited = r));
  for (;;) {
    if (exited) {
      cleanup();
      throw new Error(`agent exited early (code ${exited.code}): ${exited.stderr || exited.stdout}`);
    }
    try {
      const status = await agent.status();
      if (status.health !== 'starting') return agent;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const result = await agent.stop('SIGKILL');
      throw new Error(`agent not ready within the timeout: ${result.stderr || result.stdout}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `probe` every 50 ms until it returns a value; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A private "node" network namespace for an agent: loopback up and an `ext0` device with
 * `<prefix>.1/24` and a default route via `<prefix>.2` (the node's egress device). Throws when
 * the namespace cannot be made; delete it with `ip netns delete`.
 */
export function createNodeNetns(name: string, prefix: string): void {
  const run = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  const add = run(['netns', 'add', name]);
  if (add.status !== 0) throw new Error(add.stderr);
  run(['-n', name, 'link', 'set', 'lo', 'up']);
  run(['-n', name, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
  run(['-n', name, 'addr', 'add', `${prefix}.1/24`, 'dev', 'ext0']);
  run(['-n', name, 'link', 'set', 'ext0', 'up']);
  run(['-n', name, 'route', 'add', 'default', 'via', `${prefix}.2`]);
}
