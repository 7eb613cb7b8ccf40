// The test side of peer.mjs: starts it in a network namespace and sends it probe requests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Protocol } from './oracle.js';

const PEER_SCRIPT = fileURLToPath(new URL('./peer.mjs', import.meta.url));

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** UDP: the datagram's size in bytes (above the MTU: sent as IPv4 fragments). */
  readonly size?: number;
}

/** `ok`, `timeout`, or the error code (e.g. `ECONNREFUSED`: nothing listening — a harness fault). */
export type ProbeResult = string;

export class PeerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (results: ProbeResult[]) => void>();
  #nextId = 1;
  #buffer = '';
  #stderr = '';
  #exited = false;

  private constructor(
    readonly name: string,
    readonly netns: string,
    child: ChildProcess,
  ) {
    this.#child = child;
    child.stderr!.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    child.on('close', () => {
      this.#exited = true;
      for (const reject of this.#pending.values()) reject([]);
      this.#pending.clear();
    });
  }

  /** Starts the peer in `/run/netns/<netns>`, serving `ports`; resolves once it listens. */
  static async start(name: string, netns: string, ports: readonly number[], timeoutMs = 20_000): Promise<PeerProcess> {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, PEER_SCRIPT, ...ports.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new PeerProcess(name, netns, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer ${name} not ready in ${timeoutMs} ms: ${peer.#stderr}`)), timeoutMs);
      const onData = (d: Buffer) => {
        peer.#buffer += d.toString();
        if (!peer.#buffer.includes('ready\n')) return;
        clearTimeout(timer);
        peer.#buffer = peer.#buffer.slice(peer.#buffer.indexOf('ready\n') + 6);
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (chunk: Buffer) => peer.#onData(chunk));
        resolve();
      };
      child.stdout!.on('data', onData);
      child.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`peer ${name} exited (${code}): ${peer.#stderr}`));
      });
    });
    return peer;
  }

  #onData(chunk: Buffer): void {
    this.#buffer += chunk.toString();
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      const { id, results } = JSON.parse(line) as { id: number; results: ProbeResult[] };
      this.#pending.get(id)?.(results);
      this.#pending.delete(id);
    }
  }

  /** Probes every target at once from this peer. */
  probe(targets: readonly ProbeTarget[], timeoutMs: number): Promise<ProbeResult[]> {
    if (targets.length === 0) return Promise.resolve([]);
    if (this.#exited) return Promise.reject(new Error(`peer ${this.name} has exited: ${this.#stderr}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (results) => (results.length === targets.length ? resolve(results) : reject(new Error(`peer ${this.name} exited: ${this.#stderr}`))));
      this.#child.stdin!.write(`${JSON.stringify({ id, timeoutMs, targets })}\n`);
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const closed = new Promise((r) => this.#child.once('close', r));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await closed;
    clearTimeout(timer);
  }
}
