import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KvEntry, KvEvent, KvLease, KvStore, Logger, Unsubscribe } from '@cilia/core';
import { acquireLock } from '@cilia/kvstore';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type IOptions, type IResponseHeader } from 'etcd3';
import type { EtcdKvStoreConfig } from './config.js';
import { LeaseKeeper } from './lease-keeper.js';

/** The range_end that makes a range or watch cover every key starting with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

function checkKey(key: unknown, field = 'key'): asserts key is string {
  if (typeof key !== 'string' || key === '') throw new TypeError(`${field}: must be a non-empty string, got ${JSON.stringify(key)}`);
}

function checkWrite(value: unknown, options: { lease?: number } | undefined): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`value: must be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
  const lease = options?.lease;
  if (lease !== undefined && (!Number.isSafeInteger(lease) || lease <= 0)) {
    throw new TypeError(`options.lease: must be a positive integer lease id, got ${JSON.stringify(lease)}`);
  }
}

/** The etcd3 client options for a config section (reads the TLS and password files). */
export function clientOptions(config: EtcdKvStoreConfig): IOptions {
  const { retry: r } = config;
  const backoff = new ExponentialBackoff({ initialDelay: r.initialDelayMs, maxDelay: r.maxDelayMs });
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`kvstore-etcd.${what}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return {
    hosts: config.endpoints,
    dialTimeout: config.dialTimeoutMs,
    ...(config.tls && {
      credentials: {
        rootCertificate: read(config.tls.caFile, 'tls.caFile'),
        ...(config.tls.certFile && { certChain: read(config.tls.certFile, 'tls.certFile') }),
        ...(config.tls.keyFile && { privateKey: read(config.tls.keyFile, 'tls.keyFile') }),
      },
    }),
    ...(config.auth && {
      auth: {
        username: config.auth.username,
        password: config.auth.password ?? read(config.auth.passwordFile!, 'auth.passwordFile').toString('utf8').replace(/\r?\n$/, ''),
      },
    }),
    faultHandling: {
      global: retry(handleWhen(isRecoverableError), { maxAttempts: r.maxAttempts, backoff }),
      // A failing endpoint is skipped for a while, probed again after the same backoff (etcd3's
      // default waits a fixed 5 s, which delays recovery after etcd comes back).
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: new ExponentialBackoff({ initialDelay: r.initialDelayMs, maxDelay: r.maxDelayMs }),
          breaker: new ConsecutiveBreaker(3),
        }),
      watchBackoff: backoff.next(),
    },
  };
}

/**
 * The `KvStore` on etcd v3. Keys live below `keyPrefix`; revisions are etcd's. Watches go
 * through etcd3's watch manager, which reconnects with backoff and resumes from the revision
 * after the last one it saw; a per-watch filter drops anything already delivered, so a
 * reconnect neither misses nor repeats an event. Leases get ids this client picks (below
 * 2^53, so they stay exact JavaScript numbers) and are kept alive on one stream.
 */
export class EtcdKvStore implements KvStore {
  readonly #client: Etcd3;
  readonly #prefix: Buffer;
  readonly #logger: Logger | undefined;
  readonly #keeper: LeaseKeeper;
  /** The newest revision any response showed: where a watch without fromRevision starts. */
  #knownRevision = 0;
  #closed = false;

  constructor(client: Etcd3, options: { keyPrefix?: string; logger?: Logger } = {}) {
    this.#client = client;
    this.#prefix = Buffer.from(options.keyPrefix ?? '');
    this.#logger = options.logger;
    this.#keeper = new LeaseKeeper(client, options.logger);
  }

  /** Connects with `config`, checking etcd answers, and returns the store (for tools and tests). */
  static async connect(config: EtcdKvStoreConfig, logger?: Logger): Promise<EtcdKvStore> {
    const store = new EtcdKvStore(new Etcd3(clientOptions(config)), { keyPrefix: config.keyPrefix, ...(logger && { logger }) });
    try {
      await store.list('\u0000probe');
    } catch (err) {
      await store.close();
      throw new Error(`cannot reach etcd at ${config.endpoints.join(', ')}: ${(err as Error).message}`, { cause: err });
    }
    return store;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    const res = await this.#client.kv.range({ key: this.#full(key) });
    this.#seen(res.header);
    const kv = res.kvs[0];
    return kv && this.#entry(kv);
  }

  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: number }> {
    if (typeof prefix !== 'string') throw new TypeError(`prefix: must be a string, got ${typeof prefix}`);
    const { start, end } = this.#range(prefix);
    const res = await this.#client.kv.range({ key: start, range_end: end, sort_target: 'Key', sort_order: 'Ascend' });
    const revision = this.#seen(res.header);
    return { entries: res.kvs.map((kv) => this.#entry(kv)), revision };
  }

  async put(key: string, value: Uint8Array, options?: { lease?: number }): Promise<number> {
    checkKey(key);
    checkWrite(value, options);
    const res = await this.#client.kv.put({ key: this.#full(key), value: Buffer.from(value), ...(options?.lease && { lease: options.lease }) });
    return this.#seen(res.header);
  }

  create(key: string, value: Uint8Array, options?: { lease?: number }): Promise<boolean> {
    return this.#putIf(key, value, options, { target: 'Create', create_revision: 0 });
  }

  compareAndSwap(key: string, value: Uint8Array, expected: number, options?: { lease?: number }): Promise<boolean> {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      return Promise.reject(new TypeError(`expected: must be a modRevision (a non-negative integer), got ${JSON.stringify(expected)}`));
    }
    return this.#putIf(key, value, options, { target: 'Mod', mod_revision: expected });
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    const res = await this.#client.kv.deleteRange({ key: this.#full(key) });
    this.#seen(res.header);
    return Number(res.deleted) > 0;
  }

  watch(prefix: string, listener: (event: KvEvent) => void, options?: { fromRevision?: number }): Unsubscribe {
    if (typeof prefix !== 'string') throw new TypeError(`prefix: must be a string, got ${typeof prefix}`);
    if (typeof listener !== 'function') throw new TypeError('listener: must be a function');
    const from = options?.fromRevision ?? this.#knownRevision;
    if (!Number.isSafeInteger(from) || from < 0) throw new TypeError(`options.fromRevision: must be a non-negative integer, got ${JSON.stringify(from)}`);
    const range = this.#range(prefix);
    // The last revision delivered, and the keys delivered at it (a lease revoke deletes
    // several keys at one revision): anything at or below is a repeat after a reconnect.
    let lastRevision = from;
    let keysAtLast = new Set<string>();
    let stopped = false;
    const watcher = this.#client.watch().inRange(range).startRevision(String(from + 1)).watcher();
    watcher.on('data', (res) => {
      if (stopped) return;
      for (const e of res.events) {
        const revision = Number(e.kv.mod_revision);
        const key = this.#strip(e.kv.key);
        if (revision < lastRevision || (revision === lastRevision && keysAtLast.has(key))) continue;
        if (revision > lastRevision) {
          lastRevision = revision;
          keysAtLast = new Set();
        }
        keysAtLast.add(key);
        const event: KvEvent = e.type === 'Put' ? { type: 'put', entry: this.#entry(e.kv), revision } : { type: 'delete', key, revision };
        try {
          listener(event);
        } catch (err) {
          this.#logger?.error({ err, prefix, revision }, 'KvStore watch listener threw; the watch continues');
        }
      }
    });
    watcher.on('disconnected', (err: Error) => this.#logger?.warn({ err: err.message, prefix, lastRevision }, 'etcd watch disconnected; resuming after backoff'));
    watcher.on('connected', () => this.#logger?.debug({ prefix, lastRevision }, 'etcd watch connected'));
    watcher.on('error', (err: Error) => this.#logger?.error({ err, prefix, fromRevision: from }, 'etcd cancelled the watch (compacted revision?); list again and watch from the listing revision'));
    return () => {
      stopped = true;
      watcher.cancel().catch(() => undefined);
    };
  }

  /** Grants a lease kept alive until revoked or closed; `keepAlive: false` lets it expire after its TTL. */
  async grantLease(ttlSeconds: number, options?: { keepAlive?: boolean }): Promise<KvLease> {
    if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new TypeError(`ttlSeconds: must be an integer of at least 1, got ${JSON.stringify(ttlSeconds)}`);
    }
    for (let attempt = 0; ; attempt++) {
      const id = randomInt(1, 2 ** 47) * 61 + randomInt(0, 61);
      try {
        const res = await this.#client.leaseClient.leaseGrant({ ID: id, TTL: ttlSeconds });
        if (res.error) throw new Error(res.error);
        this.#seen(res.header);
        if (options?.keepAlive ?? true) this.#keeper.add(id, Number(res.TTL) || ttlSeconds);
        return { id, ttlSeconds: Number(res.TTL) || ttlSeconds, revoke: () => this.#revoke(id) };
      } catch (err) {
        // A collision with an existing lease id: pick another.
        if (attempt < 3 && /lease already exists/i.test((err as Error).message)) continue;
        throw err;
      }
    }
  }

  lock(key: string): Promise<() => Promise<void>> {
    return acquireLock(this, key);
  }

  /** Stops keep-alives (the leases then expire in etcd) and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#keeper.stop();
    this.#client.close();
  }

  async #revoke(id: number): Promise<void> {
    this.#keeper.remove(id);
    try {
      const res = await this.#client.leaseClient.leaseRevoke({ ID: id });
      this.#seen(res.header);
    } catch (err) {
      if (/lease not found/i.test((err as Error).message)) return;
      throw err;
    }
  }

  async #putIf(key: string, value: Uint8Array, options: { lease?: number } | undefined, compare: { target: 'Create' | 'Mod'; create_revision?: number; mod_revision?: number }): Promise<boolean> {
    checkKey(key);
    checkWrite(value, options);
    const full = this.#full(key);
    const res = await this.#client.kv.txn({
      compare: [{ key: full, result: 'Equal', ...compare }],
      success: [{ request_put: { key: full, value: Buffer.from(value), ...(options?.lease && { lease: options.lease }) } }],
      failure: [],
    });
    this.#seen(res.header);
    return res.succeeded;
  }

  #seen(header: IResponseHeader): number {
    const revision = Number(header.revision);
    if (revision > this.#knownRevision) this.#knownRevision = revision;
    return revision;
  }

  #full(key: string): Buffer {
    return Buffer.concat([this.#prefix, Buffer.from(key)]);
  }

  /** A range covering every key under `prefix` ("" with no keyPrefix: the whole keyspace). */
  #range(prefix: string): { start: Buffer; end: Buffer } {
    const start = this.#full(prefix);
    // etcd reads key "\0" with range_end "\0" as "every key"; an empty key is refused.
    return start.length === 0 ? { start: Buffer.from([0]), end: Buffer.from([0]) } : { start, end: prefixEnd(start) };
  }

  #strip(key: Buffer): string {
    return key.subarray(this.#prefix.length).toString('utf8');
  }

  #entry(kv: IKeyValue): KvEntry {
    const lease = Number(kv.lease);
    return {
      key: this.#strip(kv.key),
      value: new Uint8Array(kv.value),
      modRevision: Number(kv.mod_revision),
      createRevision: Number(kv.create_revision),
      ...(lease > 0 && { lease }),
    };
  }
}
