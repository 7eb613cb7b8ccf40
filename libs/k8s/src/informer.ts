import { ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeObject, Logger } from '@cilia/core';
import { KubeApiError, type KubeClient } from './client.js';

/** What one informer follows and how it retries. */
export interface InformerOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  /** `v1`, `cilium.io/v2`: set on list items, which the API sends without it. */
  readonly apiVersion: string;
  readonly kind: string;
  /** The collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /**
   * A kind that may not be served (a CRD not installed): a 404 on its list counts as an empty
   * listing, and it is listed again after the longest back-off.
   */
  readonly optional?: boolean;
  /** First retry delay after an error; doubles (with jitter) up to `retryMaxMs`. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  /** The server ends each watch after this long (`timeoutSeconds`); the informer resumes from its resourceVersion. */
  readonly watchTimeoutSeconds?: number;
}

/** What an informer reports about itself (for health and tests). */
export interface InformerStatus {
  readonly kind: string;
  /** The first listing has been delivered. */
  readonly synced: boolean;
  /** Full listings so far (the first, and each after a 410 Gone or a failed list). */
  readonly lists: number;
  readonly resourceVersion: string;
  /** The error since which it has been retrying, if it is. */
  readonly failing?: { readonly since: string; readonly error: string; readonly attempts: number };
  /** The kind is not served (its CRD is missing); listed again later. */
  readonly absent: boolean;
}

export interface InformerHandlers {
  /** Added or changed (a resourceVersion it had not seen). */
  upsert(object: KubeObject): void;
  /** Gone: deleted, or missing from a new listing (after a 410 Gone). */
  delete(object: KubeObject): void;
  /** The listing is complete; each full listing calls it (the first marks the informer synced). */
  listed(): void;
}

/**
 * Watch with what client-node's `ListWatch` leaves out: `allowWatchBookmarks` (the server's
 * bookmarks move the resourceVersion on, so a resumed watch is rarely too old), a server-side
 * `timeoutSeconds` and a client-side limit on top, so a connection that silently died is noticed.
 */
class BookmarkingWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly timeoutSeconds: number,
    private readonly onWatch: () => void,
    private readonly onEvent: () => void,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.onWatch();
    let timer: NodeJS.Timeout | undefined;
    const controller = await super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds },
      (phase, object, raw) => {
        this.onEvent();
        callback(phase, object, raw);
      },
      (err) => {
        clearTimeout(timer);
        done(err);
      },
    );
    if (!controller.signal.aborted) {
      timer = setTimeout(() => controller.abort(), (this.timeoutSeconds + 30) * 1000);
      timer.unref();
      controller.signal.addEventListener('abort', () => clearTimeout(timer));
    }
    return controller;
  }
}

/**
 * One kind followed with client-node's `ListWatch`: list, then watch from the list's
 * resourceVersion; a `410 Gone` (the resourceVersion was compacted away) re-lists, and objects
 * missing from the new listing are reported deleted. Errors — the server unreachable, a refused
 * call — are retried with exponential back-off from the last resourceVersion; while it retries,
 * nothing is reported deleted: what the informer had is kept until the server says otherwise.
 */
export class Informer {
  readonly #o: InformerOptions;
  readonly #log: Logger;
  readonly #handlers: InformerHandlers;
  readonly #lw: ListWatch<KubernetesObject>;
  #synced = false;
  #lists = 0;
  #listing = false;
  #absent = false;
  #attempts = 0;
  #failingSince?: Date;
  #lastError?: string;
  #retry?: NodeJS.Timeout;
  #stopped = true;

  constructor(options: InformerOptions, handlers: InformerHandlers) {
    this.#o = options;
    this.#log = options.logger.child({ kind: options.kind });
    this.#handlers = handlers;
    const watch = new BookmarkingWatch(
      options.client.config,
      options.watchTimeoutSeconds ?? 300,
      () => this.#watching(),
      () => this.#healthy(),
    );
    this.#lw = new ListWatch(options.path, watch, () => this.#list(), false, options.labelSelector, options.fieldSelector);
    this.#lw.on('add', (o) => this.#handlers.upsert(this.#typed(o)));
    this.#lw.on('update', (o) => this.#handlers.upsert(this.#typed(o)));
    this.#lw.on('delete', (o) => this.#handlers.delete(this.#typed(o)));
    this.#lw.on('error', (err) => this.#failed(err));
  }

  get kind(): string {
    return this.#o.kind;
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** The objects it holds now. */
  list(): KubeObject[] {
    return this.#lw.list().map((o) => this.#typed(o));
  }

  status(): InformerStatus {
    return {
      kind: this.#o.kind,
      synced: this.#synced,
      lists: this.#lists,
      resourceVersion: this.#lw.latestResourceVersion(),
      absent: this.#absent,
      ...(this.#failingSince ? { failing: { since: this.#failingSince.toISOString(), error: this.#lastError ?? '', attempts: this.#attempts } } : {}),
    };
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#lw.start().catch((err: unknown) => this.#failed(err));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    await this.#lw.stop();
  }

  async #list(): Promise<{ metadata: { resourceVersion?: string }; items: KubernetesObject[] }> {
    try {
      const list = await this.#o.client.list(this.#o.path, { fieldSelector: this.#o.fieldSelector, labelSelector: this.#o.labelSelector });
      this.#listing = true;
      this.#absent = false;
      return list as { metadata: { resourceVersion?: string }; items: KubernetesObject[] };
    } catch (err) {
      if (this.#o.optional && err instanceof KubeApiError && err.status === 404) {
        this.#absent = true;
        this.#lists++;
        if (!this.#synced) this.#log.warn({ path: this.#o.path }, 'kind not served (CRD not installed?); taken as empty and listed again later');
        this.#markListed();
      }
      throw err;
    }
  }

  /** ListWatch opens a watch right after it has taken a listing in: that listing is complete. */
  #watching(): void {
    if (!this.#listing) return;
    this.#listing = false;
    this.#lists++;
    this.#healthy();
    this.#markListed();
  }

  #markListed(): void {
    const first = !this.#synced;
    this.#synced = true;
    if (first) this.#log.info({ objects: this.#lw.list().length }, 'listed');
    else this.#log.info({ objects: this.#lw.list().length, lists: this.#lists }, 'listed again');
    this.#handlers.listed();
  }

  #healthy(): void {
    if (this.#failingSince) this.#log.info({ attempts: this.#attempts }, 'API server answering again');
    this.#attempts = 0;
    this.#failingSince = undefined;
    this.#lastError = undefined;
  }

  #failed(err: unknown): void {
    if (this.#stopped) return;
    const absent = this.#absent && err instanceof KubeApiError && err.status === 404;
    const max = this.#o.retryMaxMs ?? 30_000;
    this.#attempts++;
    const base = absent ? max : Math.min(max, (this.#o.retryInitialMs ?? 500) * 2 ** (this.#attempts - 1));
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    if (!absent) {
      this.#failingSince ??= new Date();
      this.#lastError = describe(err);
      this.#log.warn({ err: this.#lastError, attempt: this.#attempts, retryInMs: delayMs }, 'list/watch failed; retrying (nothing is deleted meanwhile)');
    }
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (!this.#stopped) void this.#lw.start().catch((e: unknown) => this.#failed(e));
    }, delayMs);
    this.#retry.unref();
  }

  #typed(o: KubernetesObject): KubeObject {
    return (o.apiVersion && o.kind ? o : { ...o, apiVersion: this.#o.apiVersion, kind: this.#o.kind }) as KubeObject;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { statusCode?: number; message?: string } | undefined;
  return e?.message ?? (e?.statusCode ? `HTTP ${e.statusCode}` : String(err));
}
