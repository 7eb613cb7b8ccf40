import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '@cilia/core';

/** Where the agent's Kubernetes credentials come from. */
export interface KubeConnection {
  /** A kubeconfig file; empty or absent: the in-cluster service account. */
  readonly kubeconfig?: string;
  /** The kubeconfig context to use; empty: its current context. */
  readonly context?: string;
  /** Root the in-cluster files are looked up under (tests); default `/`. */
  readonly inClusterRoot?: string;
}

/** A refused or failed API call: the HTTP status, the Status reason and message, the call. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly call: string,
  ) {
    super(`${call}: ${message}`);
    this.name = 'KubeApiError';
  }
}

/**
 * Loads the credentials through client-node: a kubeconfig (its current or named context), or the
 * in-cluster service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token and CA mounted under
 * /var/run/secrets/kubernetes.io/serviceaccount). Throws naming what is missing.
 */
export function loadKubeConfig(connection: KubeConnection): KubeConfig {
  const kc = new KubeConfig();
  if (connection.kubeconfig) {
    try {
      kc.loadFromFile(connection.kubeconfig);
    } catch (err) {
      throw new Error(`kubeconfig ${connection.kubeconfig}: ${(err as Error).message}`);
    }
    if (connection.context) {
      if (!kc.getContextObject(connection.context)) throw new Error(`kubeconfig ${connection.kubeconfig} has no context ${JSON.stringify(connection.context)}`);
      kc.setCurrentContext(connection.context);
    }
  } else {
    if (!process.env['KUBERNETES_SERVICE_HOST'] || !process.env['KUBERNETES_SERVICE_PORT']) {
      throw new Error('no kubeconfig configured and not in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)');
    }
    kc.loadFromCluster(connection.inClusterRoot ?? '');
  }
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${connection.kubeconfig ?? '(in-cluster)'} names no current cluster`);
  return kc;
}

/** Query parameters of a call; undefined values are left out. */
export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

/** A list as the API returns it (items without apiVersion/kind). */
export interface KubeList {
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items: KubeObject[];
}

/**
 * JSON calls to the API server with client-node's credentials (`applyToHTTPSOptions`: TLS, the
 * token or client certificate, exec and token-file providers). It speaks plain JSON, as the
 * watches do, where client-node's typed APIs would hand back class instances with `Date`
 * fields: the agent passes objects on as the API wrote them.
 */
export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #timeoutMs: number;

  constructor(kc: KubeConfig, options: { timeoutMs?: number } = {}) {
    this.#kc = kc;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** client-node's configuration, for its `Watch`. */
  get config(): KubeConfig {
    return this.#kc;
  }

  /** The API server's URL. */
  get server(): string {
    return this.#kc.getCurrentCluster()!.server;
  }

  get<T = KubeObject>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { ...(query ? { query } : {}) });
  }

  create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  /** PUT: the object's `metadata.resourceVersion` makes it conditional (409 when stale). */
  replace<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  /** A JSON merge patch (RFC 7386). */
  mergePatch<T = KubeObject>(path: string, patch: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, contentType: 'application/merge-patch+json' });
  }

  delete(path: string, body?: unknown): Promise<unknown> {
    return this.request('DELETE', path, body === undefined ? {} : { body });
  }

  /** Every page of a list (`limit`/`continue`), with the first page's resourceVersion. */
  async list(path: string, query: Query = {}): Promise<KubeList> {
    const items: KubeObject[] = [];
    let resourceVersion: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.get<KubeList>(path, { ...query, limit: 500, continue: token });
      resourceVersion ??= page.metadata?.resourceVersion;
      items.push(...(page.items ?? []));
      token = page.metadata?.continue || undefined;
    } while (token);
    return { metadata: { ...(resourceVersion !== undefined ? { resourceVersion } : {}) }, items };
  }

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown; contentType?: string } = {}): Promise<T> {
    const url = new URL(this.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const call = `${method} ${url.pathname}${url.search}`;
    const opts: RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.#kc.applyToHTTPSOptions(opts);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) opts.headers = { ...opts.headers, 'content-type': options.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) };
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, opts, (response: IncomingMessage) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      });
      req.setTimeout(this.#timeoutMs, () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => reject(new KubeApiError(0, 'Unreachable', `${this.server} not reachable: ${err.message}`, call)));
      req.end(payload);
    });
    let body: unknown;
    try {
      body = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      body = undefined;
    }
    if (res.status < 200 || res.status > 299) {
      const status = body as { reason?: string; message?: string } | undefined;
      throw new KubeApiError(res.status, status?.reason ?? 'Unknown', status?.message ?? (res.text.slice(0, 200) || `HTTP ${res.status}`), call);
    }
    return body as T;
  }
}

/** The path of a resource collection or object: `/api/v1[/namespaces/<ns>]/<plural>[/<name>]`. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string, name?: string): string {
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${plural}${name !== undefined ? `/${encodeURIComponent(name)}` : ''}`;
}
