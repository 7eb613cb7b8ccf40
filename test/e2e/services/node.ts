// One node for the load-balancer e2e tests: the real agent with the kube-proxy replacement plugin
// in a private "node" network namespace (nsenter --net: bpffs and /run/netns stay shared) and a
// cgroup of its own as agent.cgroupRoot, so its socket hooks see only the processes the test
// puts there; pods made through its API; Services and EndpointSlices as manifest files; clients
// and servers (svc-tool.mjs) run inside pod or node namespaces, in the node's cgroup.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, REPO, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../../support/agent.js';
import { capturePcap, pcapFields } from '../../support/capture.js';

export const TOOL = fileURLToPath(new URL('./svc-tool.mjs', import.meta.url));
export const PLUGIN = join(REPO, 'plugins/kube-proxy-replacement');

/** The first cgroup v2 mount (the unified hierarchy). */
export function cgroup2Mount(): string {
  const line = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'cgroup2');
  if (!line?.[1]) throw new Error('no cgroup2 mount');
  return line[1];
}

export interface ToolResult {
  answers: Record<string, number>;
  errors: Record<string, number>;
  peers?: string[];
  from?: string[];
  ms?: number;
  /** stream: bytes read, and why it ended early (null: it did not). */
  bytes?: number;
  error?: string | null;
}

export const sh = (cmd: string, args: readonly string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const tryRun = (cmd: string, args: readonly string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

export class ServiceNode {
  readonly run = randomBytes(3).toString('hex');
  readonly netns = `cilia-e2e-svc-${this.run}`;
  readonly outside = `cilia-e2e-out-${this.run}`;
  /** A host beside the node on its link, no node of the cluster: where a backend "on another node" runs. */
  readonly far = `cilia-e2e-far-${this.run}`;
  readonly k8sNamespace = `svc${this.run}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'cilia-svc-e2e-'));
  readonly socket = join(this.dir, 'cilia.sock');
  readonly stateDir = join(this.dir, 'state');
  readonly manifests = join(this.dir, 'manifests');
  readonly bpfRoot = testPinRoot(this.dir);
  readonly cgroup = join(cgroup2Mount(), `cilia-e2e-svc-${this.run}`);
  readonly configFile = join(this.dir, 'agent.yaml');
  readonly children: ChildProcess[] = [];
  readonly pods: Endpoint[] = [];
  agent?: NetnsProcess;

  constructor(
    readonly nodeIp: string,
    readonly outsideIp: string,
    readonly podCidr: string,
    readonly farIp = '',
  ) {}

  /**
   * Makes the namespaces, the cgroup and the config; starts the agent. The node's `ext0` and the
   * far host's `eth0` are ports of a bridge in the outside namespace, which has the outside address
   * (a client outside the cluster) and is the node's default gateway.
   */
  async up(lb: Record<string, unknown> = {}): Promise<void> {
    mkdirSync(this.manifests, { recursive: true });
    mkdirSync(this.cgroup);
    sh('ip', ['netns', 'add', this.netns]);
    sh('ip', ['netns', 'add', this.outside]);
    sh('ip', ['netns', 'add', this.far]);
    sh('ip', ['-n', this.outside, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.netns, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'p-node', 'netns', this.outside]);
    sh('ip', ['-n', this.far, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'p-far', 'netns', this.outside]);
    for (const port of ['p-node', 'p-far']) {
      sh('ip', ['-n', this.outside, 'link', 'set', port, 'master', 'br0']);
      sh('ip', ['-n', this.outside, 'link', 'set', port, 'up']);
    }
    for (const [ns, dev, addr] of [[this.netns, 'ext0', this.nodeIp], [this.outside, 'br0', this.outsideIp], [this.far, 'eth0', this.farIp]] as const) {
      if (addr) sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['-n', this.netns, 'route', 'add', 'default', 'via', this.outsideIp]);
    this.writeConfig(lb);
    await this.start();
  }

  writeConfig(lb: Record<string, unknown>): void {
    writeFileSync(
      this.configFile,
      stringify({
        agent: { apiSocket: this.socket, stateDir: this.stateDir, metricsAddress: '', bpfRoot: this.bpfRoot, nodeName: `svc-${this.run}`, cgroupRoot: this.cgroup },
        ipam: { podCIDRs: [this.podCidr] },
        manifests: { directory: this.manifests, debounceMs: 50 },
        plugins: [PLUGIN],
        lb,
      }),
    );
  }

  async start(): Promise<void> {
    this.agent = spawnInNetns(this.netns, process.execPath, [AGENT_MAIN, '--config', this.configFile]);
    this.children.push(this.agent.child);
    // Generous: on a loaded 2-core machine an agent start can take half a minute.
    await waitHealthy(this.socket, this.agent, 90_000);
  }

  /** Starts a svc-tool `loop` in `ns`; `stop()` closes its stdin and resolves with its JSON line. */
  loop(ns: string, args: readonly string[], options: { cgroup?: boolean } = {}): { stop: () => Promise<ToolResult> } {
    const child = this.spawnTool(ns, ['loop', ...args], options);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<ToolResult>((resolve) => child.on('close', (code) => resolve(out.trim() ? (JSON.parse(out) as ToolResult) : { answers: {}, errors: { [`exit ${code}`]: 1 } })));
    return {
      stop: () => {
        child.stdin!.end();
        return closed;
      },
    };
  }

  async kill(): Promise<void> {
    this.agent?.child.kill('SIGKILL');
    await this.agent?.done;
  }

  async pod(name: string): Promise<Endpoint> {
    const r = await api<Endpoint>(this.socket, 'POST', '/v1/endpoints', { name, namespace: this.k8sNamespace, labels: { 'k8s:app': name } });
    if (r.status !== 201) throw new Error(`pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    this.pods.push(r.body);
    return r.body;
  }

  /** Runs svc-tool in `ns` (a netns name) inside the node's cgroup. */
  spawnTool(ns: string, args: readonly string[], options: { cgroup?: boolean } = {}): ChildProcess {
    const cg = options.cgroup === false ? undefined : this.cgroup;
    // sh moves itself into the cgroup ($0), then becomes nsenter → node: the tool starts there.
    const script = cg ? 'echo $$ > "$0/cgroup.procs" && exec "$@"' : 'exec "$@"';
    const child = spawn('sh', ['-c', script, cg ?? 'sh', 'nsenter', `--net=/run/netns/${ns}`, process.execPath, TOOL, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  /** Starts a server answering NAME on TCP 8080 and UDP 5353 in a pod (or NAME in namespace `ns`); resolves once it listens. */
  async serve(pod: Endpoint | { readonly name: string; readonly ns: string }): Promise<ChildProcess> {
    const child = 'ns' in pod ? this.spawnTool(pod.ns, ['serve', pod.name, '8080', '5353'], { cgroup: false }) : this.spawnTool(podNs(pod), ['serve', pod.name, '8080', '5353']);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      child.on('close', (code) => reject(new Error(`server ${pod.name} exited (${code})`)));
    });
    return child;
  }

  /** Runs a svc-tool client to completion and parses its JSON line. */
  async client(ns: string, args: readonly string[], options: { cgroup?: boolean } = {}): Promise<ToolResult> {
    const child = this.spawnTool(ns, args, options);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`svc-tool ${args.join(' ')} in ${ns} exited ${code}: ${err}`);
    return JSON.parse(out) as ToolResult;
  }

  /** Writes a manifest file (YAML documents) into the watched directory. */
  manifest(file: string, ...documents: unknown[]): void {
    writeFileSync(join(this.manifests, `${file}.tmp`), documents.map((d) => stringify(d)).join('---\n'));
    execFileSync('mv', [join(this.manifests, `${file}.tmp`), join(this.manifests, file)]);
  }

  /** Captures what `filter` matches on node interface `dev` while `traffic` runs; tshark's `fields`. */
  capture(dev: string, filter: string, fields: readonly string[], traffic: () => Promise<void>): Promise<string[][]> {
    return capturePcap(this.netns, dev, filter, traffic, (pcap) => pcapFields(pcap, fields));
  }

  /** Stops everything this node made (also after a failure). */
  async down(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await this.agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${this.k8sNamespace}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', this.netns]);
    tryRun('ip', ['netns', 'delete', this.outside]);
    tryRun('ip', ['netns', 'delete', this.far]);
    rmSync(this.bpfRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
    // The cgroup goes once its last process has: they were killed above.
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(this.cgroup);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

export const podNs = (e: Endpoint) => e.netns.replace('/run/netns/', '');
