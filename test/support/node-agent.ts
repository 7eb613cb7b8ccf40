// The real agent in a private "node" network namespace (its metrics and observer ports are its
// own), with pods it creates behind veths: what the flow, gRPC and Prometheus tests share.
// Everything it makes — the netns, the pods' netns, the pin root, the temp dir — goes in
// `remove()`, also when a test failed.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ReservedIdentity, type Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, deletePodNetns, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from './agent.js';

export const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

export interface NodeAgent {
  readonly netns: string;
  readonly dir: string;
  readonly socket: string;
  readonly process: NetnsProcess;
  /** Creates a pod (an endpoint in a netns of its own) in the test's namespace, or `namespace`. */
  pod(name: string, labels: Record<string, string>, namespace?: string): Promise<Endpoint>;
  remove(): Promise<void>;
}

export interface NodeAgentOptions {
  /** Unique per test run: names the netns, the k8s namespace prefix and the node. */
  readonly run: string;
  /** The pods' namespace. */
  readonly namespace: string;
  readonly podCidr: string;
  /** Config sections besides `agent` (and `agent` keys to add). */
  readonly config?: Record<string, unknown>;
  readonly agent?: Record<string, unknown>;
}

export async function startNodeAgent(o: NodeAgentOptions): Promise<NodeAgent> {
  const netns = `cilia-e2e-${o.run}`;
  const dir = mkdtempSync(join(tmpdir(), `cilia-${o.run}-`));
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  const namespaces = new Set([o.namespace]);
  const remove = async (proc?: NetnsProcess) => {
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    await proc?.done;
    for (const ns of namespaces) deletePodNetns(ns);
    sh('ip', ['netns', 'delete', netns]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  let proc: NetnsProcess | undefined;
  try {
    if (sh('ip', ['netns', 'add', netns]).status !== 0) throw new Error(`cannot create netns ${netns}`);
    sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    const config = {
      agent: { apiSocket: socket, stateDir: join(dir, 'state'), bpfRoot, nodeName: `node-${o.run}`, ...o.agent },
      ipam: { podCIDRs: [o.podCidr] },
      datapath: { masquerade: false },
      ...o.config,
    };
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, stringify(config));
    proc = spawnInNetns(netns, process.execPath, [AGENT_MAIN, '--config', file]);
    await waitHealthy(socket, proc);
  } catch (err) {
    await remove(proc);
    throw err;
  }
  const running = proc;
  return {
    netns,
    dir,
    socket,
    process: running,
    async pod(name, labels, namespace = o.namespace) {
      namespaces.add(namespace);
      const r = await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name, namespace, labels });
      if (r.status !== 201) throw new Error(`creating pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      // A loaded machine can make the identity allocation time out: the endpoint carries `init`
      // until the agent asks again. Tests want the pod's own identity.
      let endpoint = r.body;
      for (const deadline = Date.now() + 20_000; endpoint.identity === ReservedIdentity.init; ) {
        if (Date.now() > deadline) throw new Error(`pod ${name} still has no identity of its own`);
        await new Promise((res) => setTimeout(res, 200));
        endpoint = (await api<Endpoint>(socket, 'GET', `/v1/endpoints/${endpoint.id}`)).body;
      }
      return endpoint;
    },
    remove: () => remove(running),
  };
}

/** Imports policy documents through the API and waits until every endpoint has realized them. */
export async function importPolicy(socket: string, documents: unknown[]): Promise<number> {
  const r = await api<{ revision: number; error?: string }>(socket, 'POST', '/v1/policy', { documents });
  if (r.status !== 200) throw new Error(`policy import refused: ${JSON.stringify(r.body)}`);
  for (const deadline = Date.now() + 10_000; ; ) {
    const eps = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body;
    if (eps.every((e) => e.policyRevision >= r.body.revision)) return r.body.revision;
    if (Date.now() > deadline) throw new Error(`policy revision ${r.body.revision} not realized in 10 s`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const connectArgs = (from: Endpoint, to: Endpoint, port: number, seconds: number) => ['netns', 'exec', from.netns.replace('/run/netns/', ''), 'timeout', String(seconds), 'bash', '-c', `</dev/tcp/${to.ipv4}/${port}`];

/** A TCP connection attempt from a pod, given up after `seconds`; true when it connected. */
export function connect(from: Endpoint, to: Endpoint, port: number, seconds = 1): boolean {
  return sh('ip', connectArgs(from, to, port, seconds)).status === 0;
}

/** {@link connect} without blocking the event loop meanwhile. */
export function connectAsync(from: Endpoint, to: Endpoint, port: number, seconds = 1): Promise<boolean> {
  return new Promise((resolve) => spawn('ip', connectArgs(from, to, port, seconds), { stdio: 'ignore' }).on('close', (code) => resolve(code === 0)));
}
