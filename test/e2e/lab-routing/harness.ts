// A multi-node lab in one routing mode, driven the way a person would: `npm run lab` for the
// cluster, the agents' API sockets for pods and policy, probes from inside pod namespaces,
// tshark on the underlay bridge. Shared by the routing suites (vxlan, native, geneve).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readPcap, type CapturedFrame } from '@cilia/bpf/testing';
import type { Endpoint, IpCacheEntry } from '@cilia/core';
import { openNetns } from '@cilia/netlink';
import { api, REPO } from '../../support/agent.js';
import { capturePcap, pcapFields } from '../../support/capture.js';
import { PeerProcess, type ProbeResult } from '../netpol/peer-process.js';

const LAB = join(REPO, 'tools/lab/lab.mjs');

/**
 * Headers of a VXLAN or Geneve frame (outer IPv4 without options, Geneve without options: both
 * keep the VNI in bytes 4-6 of their 8), read by offset: tshark refuses BIG TCP's, whose outer
 * lengths are 0.
 */
export function tunnelHeaders(f: CapturedFrame): { outer: string; port: number; lengths: [number, number]; vni: number; inner: string } {
  const d = f.data;
  const ip = (at: number) => [...d.subarray(at, at + 4)].join('.');
  return {
    outer: `${ip(26)} → ${ip(30)}`,
    port: d.readUInt16BE(36),
    lengths: [d.readUInt16BE(16), d.readUInt16BE(38)],
    vni: d.readUIntBE(46, 3),
    inner: `${ip(76)} → ${ip(80)}`,
  };
}
const run = promisify(execFile);
/** The port every pod's peer serves (TCP and UDP). */
export const PORT = 8000;

/** A pod of the lab: its endpoint, the node it runs on and the peer process inside it. */
export interface LabPod {
  readonly name: string;
  readonly node: number;
  readonly endpoint: Endpoint;
  readonly peer: PeerProcess;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

// Counts what one TCP connection on 5201 brings and answers the count when the sender closes.
const BULK_SERVER = `require('net').createServer(s=>{let n=0;s.on('data',d=>n+=d.length);s.on('end',()=>s.end(String(n)))}).listen(5201,()=>console.log('ready'))`;
// `HOST BYTES`: writes BYTES in 1 MiB chunks, closes its side, prints the receiver's count.
const BULK_CLIENT = `const [h,total]=[process.argv[1],+process.argv[2]];const c=Buffer.alloc(1<<20,7);let left=total,reply='';
const s=require('net').connect(5201,h,function w(){while(left>0){const n=Math.min(left,c.length);left-=n;if(!s.write(n===c.length?c:c.subarray(0,n)))return s.once('drain',w)}s.end()});
s.on('data',d=>reply+=d);s.on('end',()=>{console.log(reply);process.exit(0)});s.on('error',e=>{console.error(e.message);process.exit(1)})`;

export class RoutingLab {
  /** A prefix of its own: never touches a user's lab or another run. */
  readonly prefix = `r${randomBytes(3).toString('hex')}`;
  /** Kubernetes namespace of the pods (names their netns `cilia_<ns>_<pod>`). */
  readonly k8sNamespace = `rt${this.prefix}`;
  readonly pods: LabPod[] = [];

  constructor(
    readonly routing: string,
    readonly nodes: number,
    /** `KEY=VALUE` settings every node's agent config gets (`lab up --set`). */
    readonly settings: readonly string[] = [],
  ) {}

  node(k: number): string {
    return `${this.prefix}-${k}`;
  }

  socket(k: number): string {
    return `/var/run/cilia/${this.node(k)}/cilia.sock`;
  }

  get underlayNetns(): string {
    return `${this.prefix}-underlay`;
  }

  get bridge(): string {
    return `${this.prefix}-br`;
  }

  async lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await run(process.execPath, [LAB, ...args, '--prefix', this.prefix], { encoding: 'utf8', timeout: 150_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  async up(): Promise<void> {
    const r = await this.lab('up', '--nodes', String(this.nodes), '--routing', this.routing, ...this.settings.flatMap((s) => ['--set', s]));
    if (r.code !== 0) throw new Error(`lab up --routing ${this.routing} failed:\n${r.stdout}\n${r.stderr}`);
  }

  /** Stops every peer, then removes the lab (idempotent: safe in afterAll after any failure). */
  async down(): Promise<void> {
    await Promise.all(this.pods.map((p) => p.peer.stop().catch(() => undefined)));
    await this.lab('down');
  }

  /** Creates a pod on node `k` with label `app`, serving TCP and UDP on {@link PORT}. */
  async addPod(name: string, k: number, app: string): Promise<LabPod> {
    const r = await api<Endpoint>(this.socket(k), 'POST', '/v1/endpoints', { name, namespace: this.k8sNamespace, labels: { 'k8s:app': app } });
    if (r.status !== 201) throw new Error(`pod ${name} on ${this.node(k)}: ${r.status} ${JSON.stringify(r.body)}`);
    const peer = await PeerProcess.start(name, r.body.netns.replace('/run/netns/', ''), [PORT]);
    const pod = { name, node: k, endpoint: r.body, peer };
    this.pods.push(pod);
    return pod;
  }

  /** One TCP or UDP probe from `from` to `to` (a fresh source port each time); `size`: a UDP datagram that large, echoed whole. */
  async probe(from: LabPod, to: LabPod, protocol: 'TCP' | 'UDP', timeoutMs = 1500, size?: number): Promise<ProbeResult> {
    const [result] = await from.peer.probe([{ host: to.endpoint.ipv4!, port: PORT, protocol, ...(size ? { size } : {}) }], timeoutMs);
    return result!;
  }

  /** Whether one ICMP echo from `from` to `to` is answered. */
  ping(from: LabPod, to: LabPod): boolean {
    return spawnSync('ip', ['netns', 'exec', from.endpoint.netns.replace('/run/netns/', ''), 'ping', '-c', '1', '-W', '2', to.endpoint.ipv4!], { encoding: 'utf8' }).status === 0;
  }

  /** Imports policy documents on every node's agent (each agent has its own repository). */
  async importPolicy(...documents: unknown[]): Promise<void> {
    for (let k = 1; k <= this.nodes; k++) {
      const r = await api<{ revision: number }>(this.socket(k), 'POST', '/v1/policy', { documents });
      if (r.status !== 200) throw new Error(`policy import on ${this.node(k)}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  /** The routes Cilia set towards other nodes on node `k` (`proto 200`). */
  nodeRoutes(k: number): string[] {
    const out = spawnSync('ip', ['-n', this.node(k), '-j', 'route', 'show', 'proto', '200'], { encoding: 'utf8' }).stdout;
    return (JSON.parse(out || '[]') as IpRoute[]).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
  }

  async ipcache(k: number): Promise<IpCacheEntry[]> {
    return (await api<IpCacheEntry[]>(this.socket(k), 'GET', '/v1/ipcache')).body;
  }

  /** Prefixes in node `k`'s `cilia_ipcache` LPM map, read with bpftool. */
  lpmPrefixes(k: number): string[] {
    const out = spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', this.#ipcachePin(k)], { encoding: 'utf8' }).stdout;
    const entries = JSON.parse(out || '[]') as { formatted?: { key: { prefixlen: number; addr: number[] } } }[];
    return entries.flatMap((e) => (e.formatted ? [`${e.formatted.key.addr.slice(0, 4).join('.')}/${e.formatted.key.prefixlen - 32}`] : []));
  }

  /**
   * Runs `fn` while node `k`'s LPM map lacks the entry of `prefix` (an address: its /32), as
   * before that entry arrives through the KvStore, then puts the entry back as it was.
   */
  async withoutLpmEntry<T>(k: number, prefix: string, fn: () => Promise<T>): Promise<T> {
    const [ip, len = '32'] = prefix.split('/');
    // struct cilia_ipcache_key: prefixlen (u32, 32 + prefix length), family AF_INET, 3 bytes pad, 16 address bytes.
    const key = [String(32 + Number(len)), '0', '0', '0', '2', '0', '0', '0', ...ip!.split('.'), ...Array<string>(12).fill('0')];
    const bpftool = (...args: string[]) => {
      const r = spawnSync('bpftool', ['-j', 'map', ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`bpftool map ${args.join(' ')}: ${r.stderr || r.stdout}`);
      return r.stdout;
    };
    const { value } = JSON.parse(bpftool('lookup', 'pinned', this.#ipcachePin(k), 'key', ...key)) as { value: string[] };
    bpftool('delete', 'pinned', this.#ipcachePin(k), 'key', ...key);
    try {
      return await fn();
    } finally {
      bpftool('update', 'pinned', this.#ipcachePin(k), 'key', ...key, 'value', 'hex', ...value.map((b) => b.replace(/^0x/, '')));
    }
  }

  /** IPv4 GSO/GRO size limits of `dev` in namespace `netns` (a node, or a pod's netns path). */
  async gsoSizes(netns: string, dev: string): Promise<{ gso: number | undefined; gro: number | undefined }> {
    const nl = await openNetns(netns);
    try {
      const link = await nl.getLink(dev);
      return { gso: link.gsoIpv4MaxSize, gro: link.groIpv4MaxSize };
    } finally {
      await nl.close();
    }
  }

  /**
   * Sends `bytes` over one TCP connection from `from` to `to` (port 5201) and returns how many
   * the receiver counted: its reply once the sender has closed its side.
   */
  async bulk(from: LabPod, to: LabPod, bytes: number): Promise<number> {
    const ns = (p: LabPod) => p.endpoint.netns.replace('/run/netns/', '');
    const server = spawn('ip', ['netns', 'exec', ns(to), process.execPath, '-e', BULK_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout!.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`bulk receiver exited (${code})`)));
      });
      const r = await run('ip', ['netns', 'exec', ns(from), process.execPath, '-e', BULK_CLIENT, to.endpoint.ipv4!, String(bytes)], { encoding: 'utf8', timeout: 60_000 });
      return Number(r.stdout.trim());
    } finally {
      server.kill('SIGKILL');
    }
  }

  /** Path of node `k`'s agent config (JSON, which the agent reads as YAML). */
  agentConfig(k: number): string {
    return `/var/run/cilia-lab/${this.prefix}/${this.node(k)}/agent.yaml`;
  }

  #ipcachePin(k: number): string {
    return `/sys/fs/bpf/cilia-lab/${this.node(k)}/cilia_ipcache`;
  }

  /**
   * Captures underlay frames matching `filter` on the lab bridge while `traffic` runs, and
   * returns tshark's fields of each (decoding UDP `decodePort` as `decodeAs`, e.g. vxlan).
   */
  async capture(filter: string, fields: readonly string[], traffic: () => Promise<void>, decode?: string): Promise<string[][]> {
    return capturePcap(this.underlayNetns, this.bridge, filter, traffic, (pcap) => pcapFields(pcap, fields, decode));
  }

  /**
   * The first `snaplen` bytes and the length of each underlay frame matching `filter` while
   * `traffic` runs: for frames tshark does not decode (BIG TCP's tunnel packets, outer lengths 0).
   */
  async captureFrames(filter: string, traffic: () => Promise<void>, snaplen = 128): Promise<CapturedFrame[]> {
    return capturePcap(this.underlayNetns, this.bridge, filter, traffic, readPcap, ['-F', 'pcap', '-s', String(snaplen)]);
  }
}
