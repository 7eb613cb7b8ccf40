import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free loopback TCP port (closed again, so etcd can bind it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** TLS on the client port: the server's certificate and key, and (for mutual TLS) the CA clients must present a certificate of. */
export interface EtcdServerTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** Clients must present a certificate this CA signed (`--client-cert-auth`). */
  readonly clientCaFile?: string;
}

/** A throwaway etcd (Debian's etcd-server) on loopback with its own data dir and ports. */
export class EtcdServer {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'cilia-etcd-'));
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls?: EtcdServerTls,
  ) {}

  /** Starts etcd; with `tls`, its client endpoint is https. */
  static async start(options: { tls?: EtcdServerTls } = {}): Promise<EtcdServer> {
    const server = new EtcdServer(await freePort(), await freePort(), options.tls);
    await server.restart();
    return server;
  }

  get endpoint(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get output(): string {
    return this.#log;
  }

  /**
   * Turns etcd's authentication on with one `root` user (what `etcdctl user add root; etcdctl
   * auth enable` does), through etcd's JSON gateway. Plain http endpoints only.
   */
  async enableAuth(password: string): Promise<void> {
    for (const [path, body] of [
      ['role/add', { name: 'root' }],
      ['user/add', { name: 'root', password }],
      ['user/grant', { user: 'root', role: 'root' }],
      ['enable', {}],
    ] as const) {
      const res = await fetch(`${this.endpoint}/v3/auth/${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (res.status !== 200) throw new Error(`etcd auth ${path}: ${res.status} ${await res.text()}`);
    }
  }

  /** Starts etcd (again, on the same data dir and ports) and waits until it serves. */
  async restart(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      'etcd',
      [
        '--name', 'default',
        '--data-dir', this.dataDir,
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `default=${peer}`,
        '--logger', 'zap',
        '--log-level', 'warn',
        ...(this.tls ? ['--cert-file', this.tls.certFile, '--key-file', this.tls.keyFile] : []),
        ...(this.tls?.clientCaFile ? ['--client-cert-auth', '--trusted-ca-file', this.tls.clientCaFile] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    child.stdout!.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.#log += d.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}:\n${this.#log}`);
      if (await this.#healthy()) return;
      if (Date.now() > deadline) throw new Error(`etcd did not become healthy within 20 s:\n${this.#log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Whether `/health` answers healthy. Over TLS the server's certificate is not checked here: the client under test does that. */
  async #healthy(): Promise<boolean> {
    if (!this.tls) {
      try {
        const res = await fetch(`${this.endpoint}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      } catch {
        return false; // not listening yet
      }
    }
    // A TCP connection that stays open: etcd listens (its /health needs a client certificate under mutual TLS).
    return new Promise((resolve) => {
      const socket = connect(this.clientPort, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  }

  /** Kills etcd with SIGKILL and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Kills etcd and removes its data dir. */
  async stop(): Promise<void> {
    try {
      await this.kill();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}
