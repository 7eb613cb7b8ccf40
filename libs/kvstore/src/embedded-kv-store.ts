import { closeSync, fdatasync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, write, writeFileSync, existsSync, ftruncate } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { promisify } from 'node:util';
import type { KvEntry, KvEvent, KvLease, KvStore, Logger, Unsubscribe } from '@cilia/core';
import { frame, unframeAll } from './codec.js';
import { checkKey, checkLeaseOption, checkTtl, checkValue, KvLeaseNotFoundError } from './errors.js';
import { acquireLock } from './lock.js';
import { WatchHub } from './watch-hub.js';

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const ftruncateAsync = promisify(ftruncate);

/** Tuning of the embedded store. */
export interface EmbeddedKvStoreOptions {
  /** Log records after which the state is compacted into a snapshot. Default 10000. */
  readonly compactionThreshold?: number;
  /** Events kept for watches resuming from a past revision. Default 10000. */
  readonly historyLimit?: number;
  /** How often lease deadlines are checked, in ms. Default 250. */
  readonly leaseCheckIntervalMs?: number;
  readonly logger?: Logger;
}

interface Stored {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  lease?: number;
}

/** One log record; `seq` orders records across snapshot and log. */
type LogRecord =
  | { seq: number; op: 'put'; rev: number; key: string; value: Uint8Array; lease?: number }
  | { seq: number; op: 'del'; rev: number; keys: string[] }
  | { seq: number; op: 'grant'; id: number; ttl: number }
  | { seq: number; op: 'revoke'; id: number; rev: number; keys: string[] };

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isKeys = (v: unknown): v is string[] => Array.isArray(v) && v.every((k) => typeof k === 'string');

/** Whether a decoded log record has the shape this code writes (replay trusts its fields). */
function isLogRecord(r: unknown): r is LogRecord {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  if (!isInt(x.seq)) return false;
  switch (x.op) {
    case 'put':
      return isInt(x.rev) && typeof x.key === 'string' && x.value instanceof Uint8Array && (x.lease === undefined || isInt(x.lease));
    case 'del':
      return isInt(x.rev) && isKeys(x.keys);
    case 'grant':
      return isInt(x.id) && isInt(x.ttl);
    case 'revoke':
      return isInt(x.id) && isInt(x.rev) && isKeys(x.keys);
    default:
      return false;
  }
}

interface Snapshot {
  format: 1;
  seq: number;
  revision: number;
  nextLease: number;
  entries: Stored[];
  leases: [id: number, ttl: number][];
}

interface LeaseState {
  readonly id: number;
  readonly ttl: number;
  /** Kept alive by this process: never expires while the store is open. */
  keptAlive: boolean;
  deadline: number;
}

interface Pending {
  readonly record: LogRecord;
  readonly bytes: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

const SNAPSHOT = 'snapshot.cbor';
const LOG = 'log.cbor';
const LOCK = 'LOCK';

/** Directories opened by this process: a second store on the same files would corrupt them. */
const openDirs = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The embedded `KvStore`: one process's revisioned key-value store, kept in memory and
 * persisted under `dir` as an append-only log of checksummed CBOR records plus a snapshot.
 * A write is acknowledged only after its record is fsynced; writes arriving meanwhile are
 * committed together (group commit). Opening replays the log and cuts off a torn tail.
 *
 * Writes are decided at once against the committed state plus the writes still in flight
 * (so create and compare-and-swap race correctly), but they join the state that reads, lists
 * and watches see only once durable — applied by the same replay code that recovery runs, so
 * nothing a reader saw can be lost in a crash.
 */
export class EmbeddedKvStore implements KvStore {
  readonly dir: string;
  /** Durable state: what reads, lists and watches see. */
  readonly #entries = new Map<string, Stored>();
  /** Durable leases (id → TTL): what a snapshot records. */
  readonly #committedLeases = new Map<number, number>();
  /** Writes in flight, by key: their outcome (null: deleted) and the last record's seq. */
  readonly #overlay = new Map<string, { entry: Stored | null; seq: number }>();
  /** Live leases, in flight included: what new writes may attach to. */
  readonly #leases = new Map<number, LeaseState>();
  readonly #hub: WatchHub;
  readonly #logger: Logger | undefined;
  readonly #compactionThreshold: number;
  readonly #leaseTimer: NodeJS.Timeout;
  #fd: number;
  /** Durable revision and record sequence. */
  #revision = 0;
  #seq = 0;
  /** Revision and sequence handed out, writes in flight included. */
  #issuedRevision = 0;
  #issuedSeq = 0;
  #nextLease = 1;
  #logRecords = 0;
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #failure: Error | undefined;
  #closed = false;

  /** Opens (creating if needed) the store in `dir`, synchronously replaying what is on disk. */
  constructor(dir: string, options: EmbeddedKvStoreOptions = {}) {
    this.dir = resolvePath(dir);
    this.#logger = options.logger;
    this.#compactionThreshold = options.compactionThreshold ?? 10_000;
    if (!Number.isInteger(this.#compactionThreshold) || this.#compactionThreshold < 1) {
      throw new TypeError(`compactionThreshold: must be a positive integer, got ${options.compactionThreshold}`);
    }
    const historyLimit = options.historyLimit ?? 10_000;
    if (!Number.isInteger(historyLimit) || historyLimit < 1) throw new TypeError(`historyLimit: must be a positive integer, got ${historyLimit}`);
    if (openDirs.has(this.dir)) throw new Error(`KvStore ${this.dir} is already open in this process`);
    mkdirSync(this.dir, { recursive: true });
    this.#takeLock();
    openDirs.add(this.dir);
    try {
      const replayed = this.#load();
      this.#hub = new WatchHub(replayed.floor, historyLimit, this.#logger);
      this.#hub.publish(replayed.events);
      this.#issuedRevision = this.#revision;
      this.#issuedSeq = this.#seq;
      this.#fd = openSync(join(this.dir, LOG), 'a');
    } catch (err) {
      this.#releaseLock();
      throw err;
    }
    const interval = options.leaseCheckIntervalMs ?? 250;
    this.#leaseTimer = setInterval(() => this.#expireLeases(), interval);
    this.#leaseTimer.unref();
  }

  /** Opens the store in `dir` (see the constructor). */
  static async open(dir: string, options?: EmbeddedKvStoreOptions): Promise<EmbeddedKvStore> {
    return new EmbeddedKvStore(dir, options);
  }

  /** The store's current (durable) revision. */
  get revision(): number {
    return this.#revision;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    this.#usable();
    const e = this.#entries.get(key);
    return e && toEntry(e);
  }

  async list(prefix: string): Promise<{ entries: KvEntry[]; revision: number }> {
    if (typeof prefix !== 'string') throw new TypeError(`prefix: must be a string, got ${typeof prefix}`);
    this.#usable();
    const entries: KvEntry[] = [];
    for (const e of this.#entries.values()) if (e.key.startsWith(prefix)) entries.push(toEntry(e));
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, revision: this.#revision };
  }

  async put(key: string, value: Uint8Array, options?: { lease?: number }): Promise<number> {
    checkKey(key);
    checkValue(value);
    checkLeaseOption(options);
    this.#usable();
    const { rev, done } = this.#issuePut(key, value, options?.lease);
    await done;
    return rev;
  }

  async create(key: string, value: Uint8Array, options?: { lease?: number }): Promise<boolean> {
    checkKey(key);
    checkValue(value);
    checkLeaseOption(options);
    this.#usable();
    if (this.#view(key)) return false;
    await this.#issuePut(key, value, options?.lease).done;
    return true;
  }

  async compareAndSwap(key: string, value: Uint8Array, expected: number, options?: { lease?: number }): Promise<boolean> {
    checkKey(key);
    checkValue(value);
    checkLeaseOption(options);
    if (!Number.isSafeInteger(expected) || expected < 0) throw new TypeError(`expected: must be a modRevision (a non-negative integer), got ${JSON.stringify(expected)}`);
    this.#usable();
    // `expected` 0 means "absent", as etcd's mod_revision of a missing key.
    if ((this.#view(key)?.modRevision ?? 0) !== expected) return false;
    await this.#issuePut(key, value, options?.lease).done;
    return true;
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    this.#usable();
    if (!this.#view(key)) return false;
    const seq = ++this.#issuedSeq;
    this.#overlay.set(key, { entry: null, seq });
    await this.#issue({ seq, op: 'del', rev: ++this.#issuedRevision, keys: [key] });
    return true;
  }

  watch(prefix: string, listener: (event: KvEvent) => void, options?: { fromRevision?: number }): Unsubscribe {
    if (typeof prefix !== 'string') throw new TypeError(`prefix: must be a string, got ${typeof prefix}`);
    if (typeof listener !== 'function') throw new TypeError('listener: must be a function');
    const from = options?.fromRevision;
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 0)) {
      throw new TypeError(`options.fromRevision: must be a non-negative integer, got ${JSON.stringify(from)}`);
    }
    this.#usable();
    return this.#hub.watch(prefix, listener, from ?? this.#revision);
  }

  /**
   * Grants a lease this process keeps alive until it is revoked or the store closes. With
   * `keepAlive: false` it expires `ttlSeconds` after being granted (or last kept alive).
   */
  async grantLease(ttlSeconds: number, options?: { keepAlive?: boolean }): Promise<KvLease & { keepAliveOnce(): Promise<void> }> {
    checkTtl(ttlSeconds);
    this.#usable();
    const id = this.#nextLease++;
    const state: LeaseState = { id, ttl: ttlSeconds, keptAlive: options?.keepAlive ?? true, deadline: Date.now() + ttlSeconds * 1000 };
    this.#leases.set(id, state);
    await this.#issue({ seq: ++this.#issuedSeq, op: 'grant', id, ttl: ttlSeconds });
    return {
      id,
      ttlSeconds,
      revoke: () => this.#revoke(id),
      keepAliveOnce: async () => {
        this.#usable();
        const lease = this.#leases.get(id);
        if (!lease) throw new KvLeaseNotFoundError(id);
        lease.deadline = Date.now() + lease.ttl * 1000;
      },
    };
  }

  lock(key: string): Promise<() => Promise<void>> {
    return acquireLock(this, key);
  }

  /** Waits for writes in flight, then closes the files. Leases are not revoked: they expire after a reopen. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    this.#hub.clear();
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    closeSync(this.#fd);
    openDirs.delete(this.dir);
    this.#releaseLock();
  }

  // --- state changes: applied in memory at once, acknowledged once their record is durable ---

  #issuePut(key: string, value: Uint8Array, lease: number | undefined): { rev: number; done: Promise<void> } {
    if (lease !== undefined && !this.#leases.has(lease)) throw new KvLeaseNotFoundError(lease);
    const rev = ++this.#issuedRevision;
    const seq = ++this.#issuedSeq;
    const copy = Uint8Array.prototype.slice.call(value);
    const previous = this.#view(key);
    const entry: Stored = { key, value: copy, createRevision: previous?.createRevision ?? rev, modRevision: rev, ...(lease === undefined ? {} : { lease }) };
    this.#overlay.set(key, { entry, seq });
    return { rev, done: this.#issue({ seq, op: 'put', rev, key, value: copy, ...(lease === undefined ? {} : { lease }) }) };
  }

  /** A key as the next write must see it: in-flight writes over the durable state. */
  #view(key: string): Stored | undefined {
    const pending = this.#overlay.get(key);
    return pending ? (pending.entry ?? undefined) : this.#entries.get(key);
  }

  async #revoke(id: number): Promise<void> {
    this.#usable();
    if (!this.#leases.delete(id)) return;
    const keys: string[] = [];
    for (const e of this.#entries.values()) if (!this.#overlay.has(e.key) && e.lease === id) keys.push(e.key);
    for (const [key, { entry }] of this.#overlay) if (entry?.lease === id) keys.push(key);
    const seq = ++this.#issuedSeq;
    for (const key of keys) this.#overlay.set(key, { entry: null, seq });
    const rev = keys.length > 0 ? ++this.#issuedRevision : this.#issuedRevision;
    await this.#issue({ seq, op: 'revoke', id, rev, keys });
  }

  #expireLeases(): void {
    if (this.#closed || this.#failure) return;
    const now = Date.now();
    for (const lease of this.#leases.values()) {
      if (!lease.keptAlive && lease.deadline <= now) {
        this.#logger?.debug({ lease: lease.id }, 'KvStore lease expired');
        this.#revoke(lease.id).catch((err: unknown) => this.#logger?.error({ err, lease: lease.id }, 'KvStore could not expire a lease'));
      }
    }
  }

  // --- the log ---

  /** Hands a record to the writer; resolves once it is durable and applied. */
  #issue(record: LogRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ record, bytes: frame(record), resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#flushing || this.#pending.length === 0) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined;
      this.#kick();
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    try {
      if (this.#failure) throw this.#failure;
      const bytes = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((p) => p.bytes));
      let offset = 0;
      while (offset < bytes.length) offset += (await writeAsync(this.#fd, bytes, offset, bytes.length - offset)).bytesWritten;
      await fdatasyncAsync(this.#fd);
      this.#logRecords += batch.length;
      const events: KvEvent[] = [];
      for (const p of batch) events.push(...this.#replay(p.record, true));
      for (const [key, { seq }] of this.#overlay) if (seq <= this.#seq) this.#overlay.delete(key);
      this.#hub.publish(events);
      if (this.#logRecords >= this.#compactionThreshold) await this.#compact();
    } catch (err) {
      // Memory is now ahead of the disk: refuse everything rather than acknowledge lost writes.
      this.#failure ??= new Error(`KvStore ${this.dir} failed to persist a write; reopen it: ${(err as Error).message}`, { cause: err });
      this.#logger?.error({ err }, 'KvStore write failed');
      for (const p of batch) p.reject(this.#failure);
      for (const p of this.#pending.splice(0)) p.reject(this.#failure);
      return;
    }
    for (const p of batch) p.resolve();
  }

  /** Writes the whole state to a new snapshot (temp file, fsync, rename), then empties the log. */
  async #compact(): Promise<void> {
    const snapshot: Snapshot = {
      format: 1,
      seq: this.#seq,
      revision: this.#revision,
      nextLease: this.#nextLease,
      entries: [...this.#entries.values()],
      leases: [...this.#committedLeases],
    };
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      const bytes = frame(snapshot);
      let offset = 0;
      while (offset < bytes.length) offset += (await writeAsync(fd, bytes, offset, bytes.length - offset)).bytesWritten;
      await fdatasyncAsync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, SNAPSHOT));
    fsyncDir(this.dir);
    // The snapshot holds exactly the durable records (seq <= snapshot.seq); those in flight follow it in the log.
    await ftruncateAsync(this.#fd, 0);
    await fdatasyncAsync(this.#fd);
    this.#logRecords = 0;
    this.#logger?.debug({ revision: snapshot.revision, keys: snapshot.entries.length }, 'KvStore compacted its log into a snapshot');
  }

  /** Reads the snapshot and replays the log after it, cutting off a torn or corrupt tail. */
  #load(): { floor: number; events: KvEvent[] } {
    const snapshotPath = join(this.dir, SNAPSHOT);
    let seqFloor = 0;
    if (existsSync(snapshotPath)) {
      const { records, problem } = unframeAll<Snapshot>(readFileSync(snapshotPath));
      // The snapshot is renamed into place only once complete, so damage here is not a torn write.
      if (problem || records.length !== 1 || records[0]!.format !== 1) {
        throw new Error(`KvStore snapshot ${snapshotPath} is unreadable (${problem ?? 'unexpected content'}); refusing to open`);
      }
      const s = records[0]!;
      for (const e of s.entries) this.#entries.set(e.key, e);
      for (const [id, ttl] of s.leases) this.#committedLeases.set(id, ttl);
      this.#revision = s.revision;
      this.#seq = seqFloor = s.seq;
      this.#nextLease = s.nextLease;
    }
    const floor = this.#revision;
    const logPath = join(this.dir, LOG);
    const events: KvEvent[] = [];
    if (existsSync(logPath)) {
      const image = readFileSync(logPath);
      const { records, validLength, problem } = unframeAll<LogRecord>(image, isLogRecord);
      if (problem) {
        this.#logger?.warn({ problem, validLength, length: image.length }, 'KvStore log ends in a torn or corrupt record; cutting it off');
        const fd = openSync(logPath, 'r+');
        try {
          ftruncateSync(fd, validLength);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
      for (const r of records) {
        if (r.seq <= seqFloor) continue;
        events.push(...this.#replay(r, false));
      }
      this.#logRecords = records.length;
    } else {
      writeFileSync(logPath, '');
      fsyncDir(this.dir);
    }
    // Leases restored from disk have no holder in this process: they run out their TTL.
    const now = Date.now();
    for (const [id, ttl] of this.#committedLeases) this.#leases.set(id, { id, ttl, keptAlive: false, deadline: now + ttl * 1000 });
    return { floor, events };
  }

  /**
   * Applies a durable record to the durable state: on open (recovery) and after each sync (live;
   * the live lease table already changed when the write was issued).
   */
  #replay(r: LogRecord, live: boolean): KvEvent[] {
    this.#seq = r.seq;
    switch (r.op) {
      case 'put': {
        this.#revision = r.rev;
        const previous = this.#entries.get(r.key);
        const entry: Stored = { key: r.key, value: r.value, createRevision: previous?.createRevision ?? r.rev, modRevision: r.rev, ...(r.lease === undefined ? {} : { lease: r.lease }) };
        this.#entries.set(r.key, entry);
        return [{ type: 'put', entry: toEntry(entry), revision: r.rev }];
      }
      case 'del':
        return this.#deleteKeys(r.keys, r.rev);
      case 'grant':
        this.#committedLeases.set(r.id, r.ttl);
        if (!live) this.#nextLease = Math.max(this.#nextLease, r.id + 1);
        return [];
      case 'revoke':
        this.#committedLeases.delete(r.id);
        return this.#deleteKeys(r.keys, r.rev);
    }
  }

  #deleteKeys(keys: readonly string[], rev: number): KvEvent[] {
    if (keys.length > 0) this.#revision = rev;
    return keys.filter((k) => this.#entries.delete(k)).map((key) => ({ type: 'delete' as const, key, revision: rev }));
  }

  #usable(): void {
    if (this.#closed) throw new Error(`KvStore ${this.dir} is closed`);
    if (this.#failure) throw this.#failure;
  }

  #takeLock(): void {
    const path = join(this.dir, LOCK);
    try {
      const holder = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
        throw new Error(`KvStore ${this.dir} is in use by process ${holder}`);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    writeFileSync(path, String(process.pid));
  }

  #releaseLock(): void {
    openDirs.delete(this.dir);
    try {
      unlinkSync(join(this.dir, LOCK));
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function toEntry(e: Stored): KvEntry {
  return {
    key: e.key,
    value: Uint8Array.prototype.slice.call(e.value),
    modRevision: e.modRevision,
    createRevision: e.createRevision,
    ...(e.lease === undefined ? {} : { lease: e.lease }),
  };
}

