import { watch, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import type { InvalidManifest, ManifestObjectRef, ManifestsReport } from '@cilia/api-client';
import type { KubeObject, Logger, ResourceEvent, ResourceKind, ResourceRef, ResourceSource, Unsubscribe } from '@cilia/core';
import { AcceptedStateFile, type CachedObject } from './accepted-cache.js';
import { joinPath, parseManifestFile, type FileProblem, type ParsedObject } from './manifest-file.js';
import { describeRef, refKey } from './refs.js';
import { scanManifestDirectory } from './scan.js';

// The body of `GET /v1/manifests` and its parts are the API's wire types.
export type { InvalidManifest, ManifestObjectRef, ManifestsReport };

/** Settings of {@link ManifestDirectorySource}. */
export interface ManifestSourceOptions {
  /** Absolute path of the watched directory. */
  readonly directory: string;
  /** Quiet time after the last change before the directory is read again (editors write in bursts). */
  readonly debounceMs: number;
  /** Full rescan period in ms, a safety net for missed events and for a directory that appears later; 0 = never. */
  readonly resyncIntervalMs: number;
  /** Files larger than this are refused (reported) rather than read; default 4 MiB. */
  readonly maxFileBytes?: number;
  /**
   * Where the last accepted content of every file is kept (in the agent's state directory), so
   * that a file broken while the agent was down still contributes what it did before. Without
   * it, such a file contributes nothing after a restart.
   */
  readonly stateFile?: string;
  readonly logger: Logger;
}

interface Entry {
  readonly ref: ResourceRef;
  readonly object: KubeObject;
  /** Canonical text, to tell a changed object from a rewritten but equal one. */
  readonly json: string;
  readonly file: string;
  /** Where in the file: `""`, or `[2]` in a multi-document file. */
  readonly documentPath: string;
}

interface FileState {
  key: string;
  text: string;
  /** What this file contributes now: its last accepted content. */
  applied: Map<string, Entry>;
  problem?: FileProblem;
  /** Parsed content refused only because another file owns one of its objects; retried. */
  waiting?: Map<string, Entry>;
}

interface Subscriber {
  readonly kinds: ReadonlySet<string>;
  readonly listener: (event: ResourceEvent) => void;
  primed: boolean;
  closed: boolean;
}

/** Longest a stream of changes may hold back a read, however busy the writer. */
const MAX_DEBOUNCE_MS = 1000;
/** Default of {@link ManifestSourceOptions.maxFileBytes}. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * The standalone `ResourceSource`: Kubernetes-shaped YAML files in a directory, watched.
 *
 * Each file's last accepted content is what it contributes. A file that fails to parse or
 * validate is reported (an `invalid` event, a warning, {@link report}) and changes nothing:
 * the objects it defined before stay. An object defined by two files belongs to the one that
 * defined it first (at start: the first in path order); the other file is refused until the
 * conflict is gone. A removed file deletes its objects.
 */
export class ManifestDirectorySource implements ResourceSource {
  readonly name: string;
  readonly #options: ManifestSourceOptions;
  readonly #log: Logger;
  readonly #files = new Map<string, FileState>();
  readonly #objects = new Map<string, Entry>();
  readonly #subscribers = new Set<Subscriber>();
  readonly #watchers = new Map<string, FSWatcher>();
  #exists = false;
  #ready = false;
  #stopped = false;
  #running?: Promise<void>;
  #again = false;
  #debounce?: NodeJS.Timeout;
  #firstPending = 0;
  #resync?: NodeJS.Timeout;
  readonly #accepted?: AcceptedStateFile;

  constructor(options: ManifestSourceOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.name = `manifests:${options.directory}`;
    if (options.stateFile) this.#accepted = new AcceptedStateFile(options.stateFile);
  }

  /** Reads the directory once, then watches it. Resolves when the first reading is delivered. */
  async start(): Promise<void> {
    const started = Date.now();
    await this.#remember();
    await this.#sync();
    this.#ready = true;
    for (const s of this.#subscribers) this.#prime(s);
    const counts: Record<string, number> = {};
    for (const e of this.#objects.values()) counts[e.ref.kind] = (counts[e.ref.kind] ?? 0) + 1;
    const invalid = [...this.#files.values()].filter((f) => f.problem).length;
    if (!this.#exists) {
      this.#log.warn({ directory: this.#options.directory }, 'manifest directory does not exist: no resources until it appears');
    }
    this.#log.info(
      { directory: this.#options.directory, files: this.#files.size, objects: this.#objects.size, kinds: counts, invalid, ms: Date.now() - started },
      'manifest directory read',
    );
    if (this.#options.resyncIntervalMs > 0) {
      this.#resync = setInterval(() => this.#schedule(0), this.#options.resyncIntervalMs);
      this.#resync.unref();
    }
  }

  /** Stops watching; subscribers get nothing more. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#resync);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    await this.#running;
  }

  subscribe(kinds: readonly ResourceKind[], listener: (event: ResourceEvent) => void): Unsubscribe {
    const subscriber: Subscriber = { kinds: new Set(kinds), listener, primed: false, closed: false };
    this.#subscribers.add(subscriber);
    // Never call back before subscribe has returned its Unsubscribe.
    if (this.#ready) queueMicrotask(() => this.#prime(subscriber));
    return () => {
      subscriber.closed = true;
      this.#subscribers.delete(subscriber);
    };
  }

  /** What the directory defines now, and the files refused. */
  report(): ManifestsReport {
    const objects = [...this.#objects.values()].map((e) => ({ ...e.ref, file: e.file })).sort(byRef);
    const invalid = [...this.#files.entries()]
      .filter(([, f]) => f.problem)
      .map(([file, f]) => ({ file, ...f.problem! }))
      .sort((a, b) => a.file.localeCompare(b.file));
    return { directory: this.#options.directory, exists: this.#exists, objects, invalid };
  }

  /** Resolves once every change seen so far has been read and delivered (for tests and tools). */
  async settled(): Promise<void> {
    while (this.#debounce || this.#running) {
      await (this.#running ?? new Promise((r) => setTimeout(r, 10)));
    }
  }

  /**
   * Takes in the files' last accepted content from before the restart. The first reading then
   * replaces each with what the file holds now, drops the files gone, and keeps the remembered
   * content of a file that is invalid now.
   */
  async #remember(): Promise<void> {
    if (!this.#accepted) return;
    const { state, problem } = await this.#accepted.load();
    if (problem) this.#log.warn({ problem }, 'cannot use the remembered manifest state; starting from the files alone');
    for (const [file, cached] of [...state].sort(([a], [b]) => a.localeCompare(b))) {
      const entries = entriesOf(file, cached);
      if ([...entries.keys()].some((k) => this.#objects.has(k))) continue; // cannot happen unless edited by hand
      for (const [k, e] of entries) this.#objects.set(k, e);
      this.#files.set(file, { key: '', text: '', applied: entries });
    }
  }

  async #saveAccepted(): Promise<void> {
    if (!this.#accepted) return;
    const state = new Map<string, CachedObject[]>();
    for (const [file, f] of this.#files) {
      if (f.applied.size > 0) state.set(file, [...f.applied.values()].map((e) => ({ ref: e.ref, object: e.object, documentPath: e.documentPath })));
    }
    try {
      await this.#accepted.save(state);
    } catch (err) {
      this.#log.warn({ err, stateFile: this.#accepted.path }, 'cannot save the accepted manifest state');
    }
  }

  #prime(subscriber: Subscriber): void {
    if (subscriber.primed || subscriber.closed) return;
    subscriber.primed = true;
    const entries = [...this.#objects.values()].filter((e) => subscriber.kinds.has(e.ref.kind)).sort((a, b) => byRef(a.ref, b.ref));
    for (const e of entries) this.#deliver(subscriber, { type: 'upsert', ref: e.ref, object: e.object });
    for (const i of this.report().invalid) this.#deliver(subscriber, invalidEvent(i));
    this.#deliver(subscriber, { type: 'synced' });
  }

  #deliver(subscriber: Subscriber, event: ResourceEvent): void {
    if (subscriber.closed) return;
    try {
      subscriber.listener(event);
    } catch (err) {
      this.#log.error({ err, event: event.type }, 'resource listener threw');
    }
  }

  #emit(event: ResourceEvent): void {
    for (const s of this.#subscribers) {
      if (!s.primed) continue;
      if ((event.type === 'upsert' || event.type === 'delete') && !s.kinds.has(event.ref.kind)) continue;
      this.#deliver(s, event);
    }
  }

  /** Waits for `delayMs` of quiet (at most MAX_DEBOUNCE_MS after the first change), then reads. */
  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    const now = Date.now();
    if (!this.#debounce) this.#firstPending = now;
    clearTimeout(this.#debounce);
    const wait = Math.max(0, Math.min(delayMs, this.#firstPending + MAX_DEBOUNCE_MS - now));
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.#sync();
    }, wait);
  }

  /** One reading at a time; a change during a reading makes another one follow. */
  #sync(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#read();
        } catch (err) {
          this.#log.error({ err, directory: this.#options.directory }, 'reading the manifest directory failed; retrying at the next change or resync');
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #read(): Promise<void> {
    const listing = await scanManifestDirectory(this.#options.directory);
    if (this.#stopped) return;
    this.#exists = listing.exists;
    this.#watch(listing.directories);
    const before = new Map(this.#objects);
    const problemsBefore = new Map([...this.#files].map(([file, f]) => [file, f.problem]));

    for (const file of [...this.#files.keys()]) {
      if (!listing.files.has(file) && !listing.outside.has(file)) this.#remove(file);
    }
    for (const [file, target] of listing.outside) {
      this.#refuse(file, `outside:${target}`, '', { path: '', reason: `a symlink leading outside the manifest directory (to ${target}); not read` });
    }
    const limit = this.#options.maxFileBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    for (const [file, { absolute, key, size }] of [...listing.files].sort(([a], [b]) => a.localeCompare(b))) {
      const state = this.#files.get(file);
      if (state?.key === key) continue;
      if (size > limit) {
        this.#refuse(file, key, '', tooLarge(limit));
        continue;
      }
      let text: string;
      try {
        text = await readLimited(absolute, limit, size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.#remove(file); // gone between the scan and the read: the next event reads again
          continue;
        }
        this.#refuse(file, key, '', err instanceof FileTooLarge ? tooLarge(limit) : { path: '', reason: (err as Error).message });
        continue;
      }
      if (this.#stopped) return;
      if (state && state.text === text && !state.waiting && !state.problem) {
        state.key = key;
        continue;
      }
      const parsed = parseManifestFile(text);
      if ('problem' in parsed) this.#refuse(file, key, text, parsed.problem);
      else this.#accept(file, key, text, entriesOf(file, parsed.objects));
    }
    this.#retryWaiting();
    this.#publish(before, problemsBefore);
    await this.#saveAccepted();
  }

  #remove(file: string): void {
    const state = this.#files.get(file);
    if (!state) return;
    for (const k of state.applied.keys()) if (this.#objects.get(k)?.file === file) this.#objects.delete(k);
    this.#files.delete(file);
  }

  /** Records the problem; what the file contributed before stays. */
  #refuse(file: string, key: string, text: string, problem: FileProblem): void {
    const state = this.#files.get(file);
    if (state) {
      Object.assign(state, { key, text, problem, waiting: undefined });
    } else {
      this.#files.set(file, { key, text, applied: new Map(), problem });
    }
  }

  #accept(file: string, key: string, text: string, entries: Map<string, Entry>): boolean {
    for (const [k, e] of entries) {
      const owner = this.#objects.get(k)?.file;
      if (owner !== undefined && owner !== file) {
        this.#refuse(file, key, text, { path: joinPath(e.documentPath, 'metadata.name'), reason: `${describeRef(e.ref)} is already defined in ${owner}` });
        this.#files.get(file)!.waiting = entries;
        return false;
      }
    }
    const state = this.#files.get(file);
    for (const k of state?.applied.keys() ?? []) {
      if (!entries.has(k) && this.#objects.get(k)?.file === file) this.#objects.delete(k);
    }
    for (const [k, e] of entries) this.#objects.set(k, e);
    this.#files.set(file, { key, text, applied: entries });
    return true;
  }

  /** Files refused for a conflict get in once the other file lets go of the object. */
  #retryWaiting(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const [file, state] of [...this.#files].sort(([a], [b]) => a.localeCompare(b))) {
        if (state.waiting && this.#accept(file, state.key, state.text, state.waiting)) progress = true;
      }
    }
  }

  #publish(before: Map<string, Entry>, problemsBefore: Map<string, FileProblem | undefined>): void {
    for (const [k, e] of before) {
      if (!this.#objects.has(k)) {
        this.#progress({ ref: describeRef(e.ref), file: e.file }, 'manifest object deleted');
        this.#emit({ type: 'delete', ref: e.ref });
      }
    }
    for (const [k, e] of this.#objects) {
      const old = before.get(k);
      if (old?.json === e.json) continue;
      this.#progress({ ref: describeRef(e.ref), file: e.file }, old ? 'manifest object changed' : 'manifest object added');
      this.#emit({ type: 'upsert', ref: e.ref, object: e.object });
    }
    for (const [file, state] of this.#files) {
      const old = problemsBefore.get(file);
      if (state.problem && !sameProblem(old, state.problem)) {
        const invalid = { file, ...state.problem };
        this.#log.warn({ ...invalid }, `invalid manifest ${formatInvalid(invalid)}; nothing changed because of it`);
        this.#emit(invalidEvent(invalid));
      } else if (!state.problem && old) {
        this.#log.info({ file }, 'manifest file accepted again');
      }
    }
  }

  /** Per-object lines: the first reading is summed up in one line instead. */
  #progress(fields: Record<string, unknown>, message: string): void {
    if (this.#ready) this.#log.info(fields, message);
    else this.#log.debug(fields, message);
  }

  /** One non-recursive watcher per directory: portable, and new subdirectories join at the next reading. */
  #watch(directories: readonly string[]): void {
    const wanted = new Set(directories);
    for (const [dir, w] of this.#watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule(this.#options.debounceMs));
        w.on('error', () => {
          w.close();
          this.#watchers.delete(dir);
          this.#schedule(this.#options.debounceMs);
        });
        this.#watchers.set(dir, w);
      } catch (err) {
        // Removed between the scan and here: the next reading notices.
        this.#log.debug({ err, dir }, 'cannot watch directory');
      }
    }
  }
}

/** `pods/web.yaml: metadata.labels.app: expected string (line 7)`. */
export function formatInvalid(i: InvalidManifest): string {
  return `${i.file}: ${i.path ? `${i.path}: ` : ''}${i.reason}${i.line ? ` (line ${i.line})` : ''}`;
}

function invalidEvent(i: InvalidManifest): ResourceEvent {
  return { type: 'invalid', origin: i.file, path: i.path, reason: i.line ? `${i.reason} (line ${i.line})` : i.reason };
}

function entriesOf(file: string, objects: readonly (ParsedObject | CachedObject)[]): Map<string, Entry> {
  return new Map(
    objects.map((o) => [refKey(o.ref), { ref: o.ref, object: o.object, json: JSON.stringify(o.object), file, documentPath: o.documentPath }]),
  );
}

function sameProblem(a: FileProblem | undefined, b: FileProblem): boolean {
  return a !== undefined && a.path === b.path && a.reason === b.reason && a.line === b.line;
}

function byRef(a: ResourceRef, b: ResourceRef): number {
  return a.kind.localeCompare(b.kind) || (a.namespace ?? '').localeCompare(b.namespace ?? '') || a.name.localeCompare(b.name);
}

class FileTooLarge extends Error {}

function tooLarge(limit: number): FileProblem {
  return { path: '', reason: `file is larger than manifests.maxFileBytes (${limit} bytes); not read` };
}

/** Reads at most `limit` bytes: a file that grew after the scan is refused, never read whole. */
async function readLimited(path: string, limit: number, sizeHint: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    let buffer = Buffer.allocUnsafe(Math.min(limit, sizeHint) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > limit) throw new FileTooLarge();
      if (length === buffer.length) buffer = Buffer.concat([buffer], Math.min(limit + 1, buffer.length * 2));
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}
