// The agent's side of the proxy process: starts it (detached, so an agent that dies leaves it
// serving), or adopts the one a previous agent started; hands it every rule set; restarts it
// when it dies and says so. The rule sets live here too, so a restarted proxy gets them all.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Direction, L7AccessLogRecord, L7RuleSet, Logger, Unsubscribe } from '@cilia/core';
import type { ProxyCounters } from '../server.js';
import { PROXY_CONFIG_ENV, readMessages, ruleSetKey, send, type FromProxy, type ProxyProcessConfig, type ToProxy } from './protocol.js';

export interface ProxySupervisorOptions {
  readonly config: ProxyProcessConfig;
  /** The built entry of the proxy process (dist/process/main.js). */
  readonly entry: string;
  /** Where the process's own output goes (appended). */
  readonly logFile: string;
  readonly logger: Logger;
  /** How long after adopting a running proxy the rule sets no one re-sent are dropped. */
  readonly pruneAfterMs?: number;
}

/** What `cilia status` says of the proxy process. */
export interface ProxyProcessStatus {
  readonly running: boolean;
  readonly pid?: number;
  readonly startedAt?: string;
  /** Adopted from a previous agent rather than started by this one. */
  readonly adopted: boolean;
  readonly restarts: number;
  readonly lastExit?: string;
  readonly counters?: ProxyCounters;
  readonly ruleSets: number;
}

const CONNECT_TIMEOUT_MS = 15_000;

export class ProxySupervisor {
  readonly #sets = new Map<string, L7RuleSet>();
  readonly #listeners = new Set<(record: L7AccessLogRecord) => void>();
  readonly #log: Logger;
  #socket: Socket | undefined;
  #stopping = false;
  #restarts = 0;
  #lastExit: string | undefined;
  #hello: Extract<FromProxy, { op: 'hello' }> | undefined;
  #counters: Extract<FromProxy, { op: 'counters' }> | undefined;
  #adopted = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProxySupervisorOptions) {
    this.#log = options.logger;
  }

  /** Adopts the running proxy or starts one; resolves once it listens and talks to us. */
  async start(): Promise<void> {
    const socket = await this.#connect(0).catch(() => undefined);
    if (socket) {
      this.#adopted = true;
      this.#attach(socket);
      this.#log.info({ pid: this.#hello?.pid }, 'adopted the running L7 proxy process');
      // Rule sets come again from policy as endpoints are restored; what no one re-sends is gone.
      this.#pruneTimer = setTimeout(() => this.#send({ op: 'prune', keep: [...this.#sets.keys()] }), this.options.pruneAfterMs ?? 10_000);
      this.#pruneTimer.unref();
      return;
    }
    await this.#spawn();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#pruneTimer);
    const socket = this.#socket;
    if (!socket || socket.destroyed) return;
    const closed = new Promise((r) => socket.once('close', r));
    this.#send({ op: 'shutdown' });
    const timer = setTimeout(() => socket.destroy(), 5000);
    await closed;
    clearTimeout(timer);
  }

  upsert(set: L7RuleSet): void {
    this.#sets.set(ruleSetKey(set.endpointId, set.direction, set.port), set);
    this.#send({ op: 'upsert', set });
  }

  remove(endpointId: number, direction: Direction, port: number): void {
    this.#sets.delete(ruleSetKey(endpointId, direction, port));
    this.#send({ op: 'remove', endpointId, direction, port });
  }

  ruleSets(): L7RuleSet[] {
    return [...this.#sets.values()];
  }

  onAccessLog(listener: (record: L7AccessLogRecord) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): ProxyProcessStatus {
    const running = !!this.#socket && !this.#socket.destroyed;
    return {
      running,
      ...(running && this.#hello ? { pid: this.#hello.pid, startedAt: this.#hello.startedAt } : {}),
      adopted: this.#adopted,
      restarts: this.#restarts,
      ...(this.#lastExit ? { lastExit: this.#lastExit } : {}),
      ...(this.#counters ? { counters: this.#counters.counters } : {}),
      ruleSets: this.#counters?.ruleSets ?? this.#hello?.ruleSets ?? 0,
    };
  }

  #send(message: ToProxy): void {
    send(this.#socket, message);
  }

  async #spawn(): Promise<void> {
    const out = openSync(this.options.logFile, 'a');
    try {
      const child = spawn(process.execPath, [this.options.entry], {
        detached: true,
        stdio: ['ignore', out, out],
        env: { ...process.env, [PROXY_CONFIG_ENV]: JSON.stringify(this.options.config) },
      });
      child.once('exit', (code, signal) => (this.#lastExit = signal ? `killed by ${signal}` : `exit code ${code}`));
      child.unref();
    } finally {
      closeSync(out);
    }
    this.#adopted = false;
    const socket = await this.#connect(CONNECT_TIMEOUT_MS);
    this.#attach(socket);
    // A new process knows no rules: all of them, at once.
    for (const set of this.#sets.values()) this.#send({ op: 'upsert', set });
    this.#log.info({ pid: this.#hello?.pid, ruleSets: this.#sets.size }, 'L7 proxy process started');
  }

  /** Connects to the proxy's socket and waits for its hello, retrying until `timeoutMs`. */
  async #connect(timeoutMs: number): Promise<Socket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const socket = connect(this.options.config.socket);
          socket.once('error', reject);
          readMessages<FromProxy>(socket, (m) => {
            if (m.op === 'hello') {
              this.#hello = m;
              resolve(socket);
            } else this.#onMessage(m);
          });
        });
      } catch (err) {
        if (Date.now() >= deadline) throw new Error(`L7 proxy process not reachable on ${this.options.config.socket}: ${(err as Error).message}${this.#lastExit ? ` (${this.#lastExit})` : ''}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#stopping) return;
      this.#restarts++;
      if (this.#adopted) this.#lastExit = this.#exitOfPid();
      this.#log.error({ restarts: this.#restarts, lastExit: this.#lastExit }, 'L7 proxy process gone: restarting it');
      this.#restartTimer = setTimeout(() => void this.#respawn(), 200);
    });
  }

  async #respawn(): Promise<void> {
    try {
      await this.#spawn();
    } catch (err) {
      this.#log.error({ err }, 'L7 proxy process did not start again: retrying');
      if (!this.#stopping) this.#restartTimer = setTimeout(() => void this.#respawn(), 1000);
    }
  }

  /** For an adopted process (not our child): it is gone; say which pid. */
  #exitOfPid(): string | undefined {
    try {
      return `pid ${readFileSync(this.options.config.pidFile, 'utf8').trim()} gone`;
    } catch {
      return undefined;
    }
  }

  #onMessage(m: FromProxy): void {
    if (m.op === 'counters') this.#counters = m;
    else if (m.op === 'log') {
      const record: L7AccessLogRecord = { ...m.record, time: new Date(m.record.time) };
      for (const l of this.#listeners) l(record);
    }
  }
}
