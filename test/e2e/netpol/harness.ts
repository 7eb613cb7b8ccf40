// The netpol e2e cluster on one machine, after the upstream Kubernetes network-policy e2e model:
// namespaces x, y, z (named `<base>-<run>`, labelled `ns=<base>`), pods a, b, c in each
// (labelled `pod=<name>`, named ports serve-{80,81}-{tcp,udp}), all from a manifest directory
// the real agent watches. The agent runs in a private "node" netns; two "world" clients sit
// behind veths of the node netns with addresses outside the cluster (192.0.2.0/24), routed by the
// node; the node netns itself is the host peer. Every pod, world client and the host runs one
// peer process (servers on 80 and 81, prober on stdin).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PerCpuMap } from '@cilia/bpf';
import type { AgentStatus, Endpoint } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { AGENT_MAIN, api, REPO, spawnInNetns, testPinRoot, type NetnsProcess } from '../../support/agent.js';
import type { ClusterModel, NamedPort, NamespaceModel, PeerModel, PodModel } from './oracle.js';
import { PeerProcess } from './peer-process.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export type NamespaceBase = (typeof NAMESPACES)[number];
export const SERVE_PORTS = [80, 81] as const;
export const NAMED_PORTS: readonly NamedPort[] = SERVE_PORTS.flatMap((port) => [
  { name: `serve-${port}-tcp`, port, protocol: 'TCP' as const },
  { name: `serve-${port}-udp`, port, protocol: 'UDP' as const },
]);

const HOST_IP = '172.31.252.1';
/** World clients: 192.0.2.0/24 (TEST-NET-1), one in each half so a /25 `except` can split them. */
export const WORLD = [
  { name: 'w1', ip: '192.0.2.10' },
  { name: 'w2', ip: '192.0.2.200' },
] as const;
const POD_CIDR = '10.244.61.0/24';

const sh = (cmd: string, args: readonly string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: readonly string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A probe end with its display name (`x/a`, `host`, `w1`) and its peer process. */
export interface ClusterPeer {
  readonly name: string;
  readonly ip: string;
  readonly process: PeerProcess;
  model(): PeerModel;
}

export class NetpolCluster {
  readonly run = randomBytes(3).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), 'cilia-netpol-'));
  readonly manifests = join(this.dir, 'manifests');
  readonly socket = join(this.dir, 'cilia.sock');
  readonly bpfRoot = testPinRoot(this.dir);
  readonly nodeNs = `cilia-np-node-${this.run}`;
  readonly worldNs = WORLD.map((w) => `cilia-np-${w.name}-${this.run}`);
  readonly peers = new Map<string, ClusterPeer>();
  readonly #namespaceLabels = new Map<NamespaceBase, Record<string, string>>();
  readonly #pods = new Map<string, PodModel>();
  #agent: NetnsProcess | undefined;
  readonly #configFile = join(this.dir, 'agent.yaml');

  /** The real namespace name of `x`, `y` or `z`. */
  ns(base: NamespaceBase): string {
    return `${base}-${this.run}`;
  }

  podPeers(): ClusterPeer[] {
    return NAMESPACES.flatMap((n) => PODS.map((p) => this.peers.get(`${n}/${p}`)!));
  }

  peer(name: string): ClusterPeer {
    const p = this.peers.get(name);
    if (!p) throw new Error(`no peer ${name}`);
    return p;
  }

  /** The cluster as the oracle sees it now. */
  model(): ClusterModel {
    return {
      namespaces: NAMESPACES.map((n): NamespaceModel => ({ name: this.ns(n), labels: this.#fullNamespaceLabels(n) })),
      pods: [...this.#pods.values()],
    };
  }

  agentOutput(): string {
    return this.#agent?.output() ?? '';
  }

  async setUp(): Promise<void> {
    this.#plumbNode();
    mkdirSync(this.manifests);
    for (const n of NAMESPACES) {
      this.#namespaceLabels.set(n, { ns: n });
      this.#writeNamespace(n);
      for (const p of PODS) this.#writePod(n, p);
    }
    writeFileSync(
      this.#configFile,
      stringify({
        agent: { apiSocket: this.socket, stateDir: join(this.dir, 'state'), metricsAddress: '', bpfRoot: this.bpfRoot, nodeName: `np-${this.run}` },
        ipam: { podCIDRs: [POD_CIDR] },
        datapath: { masquerade: false },
        manifests: { directory: this.manifests, debounceMs: 50 },
      }),
    );
    this.#agent = spawnInNetns(this.nodeNs, process.execPath, [AGENT_MAIN, '--config', this.#configFile]);
    await this.#waitAgentReady();
    const endpoints = await until(
      'the 9 pod endpoints to be ready',
      async () => {
        const eps = (await this.endpoints()).filter((e) => e.state === 'ready' && e.ipv4);
        return eps.length === NAMESPACES.length * PODS.length ? eps : undefined;
      },
      90_000,
    );
    for (const e of endpoints) {
      const base = NAMESPACES.find((n) => this.ns(n) === e.namespace)!;
      const pod: PodModel = { namespace: e.namespace!, name: e.name!, labels: { pod: e.name! }, ip: e.ipv4!, ports: NAMED_PORTS };
      this.#pods.set(`${base}/${e.name}`, pod);
    }
    const starts: Promise<void>[] = [];
    for (const [name, pod] of this.#pods) {
      const netns = endpoints.find((e) => e.namespace === pod.namespace && e.name === pod.name)!.netns.replace('/run/netns/', '');
      starts.push(this.#startPeer(name, pod.ip, netns, () => ({ kind: 'pod', pod: this.#pods.get(name)! })));
    }
    starts.push(this.#startPeer('host', HOST_IP, this.nodeNs, () => ({ kind: 'host', ip: HOST_IP })));
    WORLD.forEach((w, i) => starts.push(this.#startPeer(w.name, w.ip, this.worldNs[i]!, () => ({ kind: 'world', name: w.name, ip: w.ip }))));
    await Promise.all(starts);
  }

  async #startPeer(name: string, ip: string, netns: string, model: () => PeerModel): Promise<void> {
    const process = await PeerProcess.start(name, netns, SERVE_PORTS);
    this.peers.set(name, { name, ip, process, model });
  }

  /** Node netns with forwarding, and the world clients on veths with /32 routes both ways. */
  #plumbNode(): void {
    sh('ip', ['netns', 'add', this.nodeNs]);
    sh('ip', ['-n', this.nodeNs, 'link', 'set', 'lo', 'up']);
    sh('ip', ['netns', 'exec', this.nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    WORLD.forEach((w, i) => {
      const ns = this.worldNs[i]!;
      const link = `npw${i + 1}${this.run}`;
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', this.nodeNs, 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('ip', ['-n', this.nodeNs, 'addr', 'add', `${HOST_IP}/32`, 'dev', link]);
      sh('ip', ['-n', this.nodeNs, 'link', 'set', link, 'up']);
      sh('ip', ['-n', this.nodeNs, 'route', 'add', `${w.ip}/32`, 'dev', link, 'scope', 'link']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${w.ip}/32`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'route', 'add', `${HOST_IP}/32`, 'dev', 'eth0', 'scope', 'link']);
      sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', HOST_IP, 'dev', 'eth0']);
    });
  }

  /** Stops the agent with `signal`; resolves once it has exited (the pods and their peers stay). */
  async stopAgent(signal: NodeJS.Signals): Promise<number | null> {
    const agent = this.#agent!;
    agent.child.kill(signal);
    return agent.done;
  }

  /** Starts the agent again on the same config, state directory and pinned maps. */
  async startAgent(): Promise<void> {
    this.#agent = spawnInNetns(this.nodeNs, process.execPath, [AGENT_MAIN, '--config', this.#configFile]);
    await this.#waitAgentReady();
  }

  async #waitAgentReady(): Promise<void> {
    const agent = this.#agent!;
    await until(
      'the agent to be ready',
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
        const s = await api<AgentStatus>(this.socket, 'GET', '/v1/status').catch(() => undefined);
        if (s?.body.health === 'failed') throw new Error(`agent failed: ${s.body.problems.join('; ')}`);
        return s?.body.health === 'ok' || s?.body.health === 'degraded' ? true : undefined;
      },
      60_000,
    );
  }

  #fullNamespaceLabels(n: NamespaceBase): Record<string, string> {
    return { ...this.#namespaceLabels.get(n), 'kubernetes.io/metadata.name': this.ns(n) };
  }

  #writeNamespace(n: NamespaceBase): void {
    const doc = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: this.ns(n), labels: this.#namespaceLabels.get(n) } };
    writeFileSync(join(this.manifests, `ns-${n}.yaml`), stringify(doc));
  }

  #writePod(n: NamespaceBase, p: string, labels: Record<string, string> = { pod: p }): void {
    const doc = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p, namespace: this.ns(n), labels },
      spec: {
        containers: [
          {
            name: 'cont-80-81',
            image: 'agnhost',
            ports: NAMED_PORTS.map((np) => ({ name: np.name, containerPort: np.port, protocol: np.protocol })),
          },
        ],
      },
    };
    writeFileSync(join(this.manifests, `pod-${n}-${p}.yaml`), stringify(doc));
  }

  /**
   * Rewrites a Namespace manifest with new labels and waits until its pods' endpoints carry them
   * (as `k8s:io.cilium.k8s.namespace.labels.<key>`).
   */
  async setNamespaceLabels(n: NamespaceBase, labels: Record<string, string>): Promise<void> {
    this.#namespaceLabels.set(n, labels);
    this.#writeNamespace(n);
    const want = Object.entries(this.#fullNamespaceLabels(n)).map(([k, v]) => [`k8s:io.cilium.k8s.namespace.labels.${k}`, v] as const);
    await until(
      `the endpoints of namespace ${n} to carry its labels ${JSON.stringify(labels)} (k8s:io.cilium.k8s.namespace.labels.*)`,
      async () => {
        const eps = (await this.endpoints()).filter((e) => e.namespace === this.ns(n));
        const prefix = 'k8s:io.cilium.k8s.namespace.labels.';
        const done = eps.every((e) => {
          const nsLabels = Object.entries(e.labels).filter(([k]) => k.startsWith(prefix));
          return nsLabels.length === want.length && want.every(([k, v]) => e.labels[k] === v);
        });
        return eps.length === PODS.length && done ? true : undefined;
      },
      30_000,
    );
  }

  /** Rewrites a Pod manifest with new labels and waits until its endpoint carries them. */
  async setPodLabels(n: NamespaceBase, p: string, labels: Record<string, string>): Promise<void> {
    const key = `${n}/${p}`;
    const pod = this.#pods.get(key)!;
    this.#pods.set(key, { ...pod, labels });
    this.#writePod(n, p, labels);
    await until(
      `the endpoint of pod ${key} to carry the labels ${JSON.stringify(labels)}`,
      async () => {
        const e = (await this.endpoints()).find((x) => x.namespace === this.ns(n) && x.name === p);
        const podLabels = Object.entries(e?.labels ?? {}).filter(([k]) => k.startsWith('k8s:') && !k.startsWith('k8s:io.'));
        const same = podLabels.length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => e?.labels[`k8s:${k}`] === v);
        return same ? true : undefined;
      },
      30_000,
    );
  }

  /** Writes (or, with undefined, removes) a file of the watched manifest directory. */
  writeManifest(file: string, documents: readonly unknown[] | undefined): void {
    const path = join(this.manifests, file);
    if (documents === undefined) rmSync(path, { force: true });
    else writeFileSync(path, documents.map((d) => stringify(d)).join('---\n'));
  }

  /** Packets the datapath dropped for `reason`, both directions (the per-CPU metrics map). */
  dropCount(reason: keyof typeof datapathMaps.DropReason): number {
    const metrics = PerCpuMap.openPinnedPerCpu(join(this.bpfRoot, 'cilia_metrics'), { key: datapathMaps.MetricsKey, value: datapathMaps.MetricsValue });
    try {
      let packets = 0;
      for (const dir of [datapathMaps.Direction.ingress, datapathMaps.Direction.egress]) {
        for (const v of metrics.lookup({ reason: datapathMaps.DropReason[reason], dir }) ?? []) packets += v.packets;
      }
      return packets;
    } finally {
      metrics.close();
    }
  }

  /** `GET /v1/policy`. */
  async policies(): Promise<{ revision: number; rules: { kind: string; name: string; namespace?: string }[] }> {
    const r = await api<{ revision: number; rules: { kind: string; name: string; namespace?: string }[] }>(this.socket, 'GET', '/v1/policy');
    if (r.status !== 200) throw new Error(`GET /v1/policy: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Runs the `cilia` CLI against this agent. */
  cli(args: readonly string[], input?: string): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(join(REPO, 'node_modules/.bin/cilia'), [...args, '--socket', this.socket], { encoding: 'utf8', input, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  async endpoints(): Promise<Endpoint[]> {
    const nss = new Set(NAMESPACES.map((n) => this.ns(n)));
    return (await api<Endpoint[]>(this.socket, 'GET', '/v1/endpoints')).body.filter((e) => nss.has(e.namespace ?? ''));
  }

  /** `POST /v1/policy` as is. */
  postPolicies(documents: readonly unknown[]): Promise<{ status: number; body: { revision?: number; error?: string; path?: string } }> {
    return api<{ revision?: number; error?: string; path?: string }>(this.socket, 'POST', '/v1/policy', { documents });
  }

  /** `POST /v1/policy`; returns the new revision. */
  async importPolicies(documents: readonly unknown[]): Promise<number> {
    const r = await this.postPolicies(documents);
    if (r.status !== 200 || typeof r.body?.revision !== 'number') throw new Error(`POST /v1/policy: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.revision;
  }

  /** `DELETE /v1/policy?<query>`; the new revision, or undefined when nothing matched (404). */
  async deletePolicies(query: string): Promise<number | undefined> {
    const r = await api<{ revision?: number }>(this.socket, 'DELETE', `/v1/policy?${query}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200 || typeof r.body?.revision !== 'number') throw new Error(`DELETE /v1/policy?${query}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.revision;
  }

  /** Waits until every pod endpoint reports a realized policy revision ≥ `revision`. */
  async waitRevision(revision: number): Promise<void> {
    let last: Endpoint[] = [];
    try {
      await until(
        `every endpoint to realize policy revision ${revision}`,
        async () => {
          last = await this.endpoints();
          return last.length === NAMESPACES.length * PODS.length && last.every((e) => (e.policyRevision ?? -1) >= revision) ? true : undefined;
        },
        30_000,
      );
    } catch (err) {
      const seen = last.map((e) => `${e.namespace}/${e.name}=${String(e.policyRevision)}`).join(' ');
      throw new Error(`${(err as Error).message}; realized: ${seen}`);
    }
  }

  /** Removes every policy (the state between cases) and waits until the endpoints realized that. */
  async resetPolicies(): Promise<void> {
    const revision = await this.deletePolicies('all=true');
    if (revision !== undefined) await this.waitRevision(revision);
  }

  async tearDown(): Promise<void> {
    await Promise.all([...this.peers.values()].map((p) => p.process.stop().catch(() => undefined)));
    const agent = this.#agent;
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill('SIGTERM');
      const timer = setTimeout(() => agent.child.kill('SIGKILL'), 10_000);
      await agent.done;
      clearTimeout(timer);
    }
    const podNetnsPrefixes = NAMESPACES.map((n) => `cilia_${this.ns(n)}_`);
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (podNetnsPrefixes.some((p) => ns.startsWith(p))) tryRun('ip', ['netns', 'delete', ns]);
    }
    for (const ns of [this.nodeNs, ...this.worldNs]) tryRun('ip', ['netns', 'delete', ns]);
    rmSync(this.bpfRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
