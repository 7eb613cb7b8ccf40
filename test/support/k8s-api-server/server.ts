import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { jsonPatch, mergePatch, PatchError, strategicMerge } from './patch.js';
import { apiVersionOf, builtinResources, DefinitionError, resourcesOfDefinition, type JsonSchema, type ResourceType } from './resources.js';
import { validateAndPrune, type FieldError } from './schema.js';
import { parseFieldSelector, parseLabelSelector, SelectorError, type FieldMatcher, type Matcher } from './selectors.js';
import { ObjectStore, storageKey, type Change, type KubeJson } from './store.js';

/** Settings of {@link KubeApiServer}. */
export interface KubeApiServerOptions {
  /** Serve HTTPS with a throwaway CA made with openssl (the kubeconfig carries the CA). Default true. */
  readonly tls?: boolean;
  /** Require `Authorization: Bearer <token>`; without it every request is allowed. */
  readonly token?: string;
  /** How often a watch that asked for them gets a BOOKMARK. Default 1 s (the real server: about a minute). */
  readonly bookmarkIntervalMs?: number;
}

/** One request as the server saw it, for tests that check what a client did. */
export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

interface Target {
  readonly type: ResourceType;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: 'status';
}

interface Watcher {
  readonly resource: string;
  readonly namespace?: string;
  readonly labels?: Matcher;
  readonly fields?: FieldMatcher;
  readonly send: (type: string, object: unknown) => void;
  readonly end: () => void;
}

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A small Kubernetes API server for tests: it follows the conventions clients rely on —
 * discovery, list and watch with resourceVersion (one counter for every kind, as etcd's
 * revision), `410 Gone` for a watch from a compacted resourceVersion, bookmarks, label and field
 * selectors, CustomResourceDefinitions (served at once, objects validated and pruned by their
 * schema), status subresources, optimistic concurrency on update, merge/JSON/strategic merge
 * patches — and nothing else: no controllers, no admission beyond defaults, no
 * garbage collection, immediate deletion. Lives in the test tree, never in the product.
 */
export class KubeApiServer {
  readonly store = new ObjectStore();
  readonly requests: RequestRecord[] = [];
  readonly #types = new Map<string, ResourceType>();
  readonly #options: Required<Omit<KubeApiServerOptions, 'token'>> & { token?: string };
  readonly #watchers = new Set<Watcher>();
  readonly #sockets = new Set<Socket>();
  #server?: Server;
  #port = 0;
  #dir?: string;
  #pki?: { ca: string; cert: string; key: string };
  #nextClusterIp = 10;

  constructor(options: KubeApiServerOptions = {}) {
    this.#options = { tls: options.tls ?? true, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000, ...(options.token ? { token: options.token } : {}) };
    for (const type of builtinResources()) this.#types.set(typeKey(type.group, type.version, type.plural), type);
    for (const name of DEFAULT_NAMESPACES) this.store.create('/namespaces', namespaceObject(name));
    this.store.subscribe((change) => this.#dispatch(change));
  }

  /** `https://127.0.0.1:<port>` (or http). */
  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The CA certificate (PEM) clients must trust; undefined without TLS. */
  get caPem(): string | undefined {
    return this.#pki?.ca;
  }

  /** Listens on 127.0.0.1 (`port` 0: any free port; the same port again after {@link stop}). */
  async start(port = this.#port): Promise<void> {
    if (this.#server) return;
    if (this.#options.tls && !this.#pki) this.#pki = makePki((this.#dir ??= mkdtempSync(join(tmpdir(), 'cilia-kube-api-'))));
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    const server = this.#pki ? createHttpsServer({ cert: this.#pki.cert, key: this.#pki.key }, handler) : createHttpServer(handler);
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Stops listening and drops every connection (watches end abruptly, as when the server goes away). Objects stay. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const w of [...this.#watchers]) w.end();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stops and removes the certificates made for it. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Ends every watch stream cleanly (the client resumes from its resourceVersion). */
  endWatches(): void {
    for (const w of [...this.#watchers]) w.end();
  }

  /** Number of watch streams open now. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  /** Compacts the history: a watch resuming from any resourceVersion so far gets `410 Gone`. */
  compact(): void {
    this.store.compact();
  }

  /**
   * Writes a kubeconfig for this server (CA embedded, the token as the user's) to `path`, or to
   * a file in the server's own directory. Returns the path.
   */
  writeKubeconfig(path?: string, options: { token?: string; namespace?: string } = {}): string {
    const file = path ?? join((this.#dir ??= mkdtempSync(join(tmpdir(), 'cilia-kube-api-'))), 'kubeconfig');
    const token = options.token ?? this.#options.token;
    const cluster: Record<string, unknown> = { server: this.url };
    if (this.#pki) cluster['certificate-authority-data'] = Buffer.from(this.#pki.ca).toString('base64');
    else cluster['insecure-skip-tls-verify'] = true;
    writeFileSync(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'test', cluster }],
        users: [{ name: 'test', user: token ? { token } : {} }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', ...(options.namespace ? { namespace: options.namespace } : {}) } }],
        'current-context': 'test',
      }),
    );
    return file;
  }

  /** The files a pod's service account mount holds (token, ca.crt, namespace) in `dir`, for in-cluster config. */
  writeServiceAccount(dir: string, namespace = 'kube-system'): void {
    if (!this.#pki || !this.#options.token) throw new Error('in-cluster config needs TLS and a token');
    writeFileSync(join(dir, 'token'), this.#options.token);
    writeFileSync(join(dir, 'ca.crt'), this.#pki.ca);
    writeFileSync(join(dir, 'namespace'), namespace);
  }

  /** The type serving `apiVersion`/`kind`, if any. */
  typeOf(apiVersion: string, kind: string): ResourceType | undefined {
    return [...this.#types.values()].find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  }

  /** Objects of a kind (all namespaces, or one), as a list would return them. */
  objects(apiVersion: string, kind: string, namespace?: string): KubeJson[] {
    const type = this.typeOf(apiVersion, kind);
    if (!type) throw new Error(`no resource serves ${apiVersion} ${kind}`);
    return this.store.list(storageKey(type), namespace).map((o) => withTypeMeta(type, o));
  }

  /** Creates or replaces an object directly (as if applied), returning it as stored. */
  put(object: Record<string, unknown>): KubeJson {
    const type = this.typeOf(String(object['apiVersion']), String(object['kind']));
    if (!type) throw new Error(`no resource serves ${String(object['apiVersion'])} ${String(object['kind'])}`);
    const meta = (object['metadata'] ?? {}) as KubeJson['metadata'];
    const existing = this.store.get(storageKey(type), type.namespaced ? (meta.namespace ?? 'default') : undefined, meta.name);
    const body = { ...object, metadata: { ...meta, ...(type.namespaced ? { namespace: meta.namespace ?? 'default' } : {}) } } as KubeJson;
    const stored = existing ? this.#update({ type, namespace: body.metadata.namespace, name: meta.name }, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } }) : this.#create({ type, namespace: body.metadata.namespace }, body);
    return stored;
  }

  /** Deletes an object directly; false when there was none. */
  remove(apiVersion: string, kind: string, name: string, namespace?: string): boolean {
    const type = this.typeOf(apiVersion, kind);
    if (!type) throw new Error(`no resource serves ${apiVersion} ${kind}`);
    return this.#delete(type, type.namespaced ? (namespace ?? 'default') : undefined, name) !== undefined;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    let status = 200;
    try {
      if (this.#options.token && req.headers.authorization !== `Bearer ${this.#options.token}`) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req);
      const result = this.#route(method, url.pathname, query, req, res, body);
      if (result === WATCHING) {
        this.requests.push({ method: 'WATCH', path: url.pathname, query, status: 200 });
        return;
      }
      status = result.status ?? 200;
      send(res, status, result.body);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      status = e.code;
      send(res, e.code, statusObject(e));
    }
    this.requests.push({ method, path: url.pathname, query, status });
  }

  #route(method: string, path: string, query: Record<string, string>, req: IncomingMessage, res: ServerResponse, body: unknown): { status?: number; body: unknown } | typeof WATCHING {
    const parts = path.split('/').filter((p) => p !== '');
    if (path === '/version') return { body: { major: '1', minor: '20', gitVersion: 'v1.20.0-cilia-test', platform: 'linux/amd64' } };
    if (['/healthz', '/readyz', '/livez'].includes(path)) return { body: 'ok' };
    if (path === '/openapi/v2') return { body: OPENAPI_V2 };
    if (method === 'GET' && path === '/api') return { body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.#port}` }] } };
    if (method === 'GET' && path === '/apis') return { body: { kind: 'APIGroupList', apiVersion: 'v1', groups: this.#groups() } };
    if (method === 'GET' && parts[0] === 'apis' && parts.length === 2) {
      const group = this.#groups().find((g) => g.name === parts[1]);
      if (!group) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return { body: { kind: 'APIGroup', apiVersion: 'v1', ...group } };
    }
    const groupVersion = parts[0] === 'api' ? { group: '', version: parts[1], rest: parts.slice(2) } : parts[0] === 'apis' ? { group: parts[1] ?? '', version: parts[2], rest: parts.slice(3) } : undefined;
    if (!groupVersion?.version) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const { group, version, rest } = groupVersion;
    if (rest.length === 0) {
      if (method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
      return { body: this.#resourceList(group, version) };
    }
    const target = this.#target(group, version, rest);
    switch (method) {
      case 'GET':
        if (target.name) {
          const object = this.store.get(storageKey(target.type), target.namespace, target.name);
          if (!object) throw notFound(target.type, target.name);
          return { body: withTypeMeta(target.type, object) };
        }
        if (query['watch'] === 'true' || query['watch'] === '1') {
          this.#watch(target, query, req, res);
          return WATCHING;
        }
        return { body: this.#list(target, query) };
      case 'POST':
        if (target.name) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        return { status: 201, body: withTypeMeta(target.type, this.#create(target, asObject(body))) };
      case 'PUT':
        if (!target.name) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        return { body: withTypeMeta(target.type, this.#update(target, asObject(body))) };
      case 'PATCH':
        if (!target.name) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
        return { body: withTypeMeta(target.type, this.#patch(target, String(req.headers['content-type'] ?? ''), body)) };
      case 'DELETE': {
        if (!target.name) return { body: this.#deleteCollection(target, query) };
        const existing = this.store.get(storageKey(target.type), target.namespace, target.name);
        if (!existing) throw notFound(target.type, target.name);
        const precondition = (asOptionalObject(body)?.['preconditions'] ?? {}) as { uid?: string; resourceVersion?: string };
        if (precondition.uid && precondition.uid !== existing.metadata.uid) throw conflict(target.type, target.name, `Precondition failed: UID in precondition: ${precondition.uid}, UID in object meta: ${existing.metadata.uid}`);
        if (precondition.resourceVersion && precondition.resourceVersion !== existing.metadata.resourceVersion)
          throw conflict(target.type, target.name, `Precondition failed: ResourceVersion in precondition: ${precondition.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`);
        const gone = this.#delete(target.type, target.namespace, target.name)!;
        return { body: withTypeMeta(target.type, gone) };
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${method} not allowed`);
    }
  }

  /** Resolves `[namespaces/<ns>/]<plural>[/<name>[/status]]` under a group version. */
  #target(group: string, version: string, rest: string[]): Target {
    let namespace: string | undefined;
    let parts = rest;
    if (parts[0] === 'namespaces' && parts.length >= 3 && !['status', 'finalize'].includes(parts[2]!)) {
      namespace = parts[1];
      parts = parts.slice(2);
    }
    const type = this.#types.get(typeKey(group, version, parts[0]!));
    if (!type || parts.length > 3 || (parts.length === 3 && parts[2] !== 'status') || (parts[2] === 'status' && !type.status)) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (namespace !== undefined && !type.namespaced) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    return { type, ...(namespace !== undefined ? { namespace } : {}), ...(parts[1] ? { name: parts[1] } : {}), ...(parts[2] ? { subresource: 'status' as const } : {}) };
  }

  #groups(): { name: string; versions: { groupVersion: string; version: string }[]; preferredVersion: { groupVersion: string; version: string } }[] {
    const groups = new Map<string, Set<string>>();
    for (const t of this.#types.values()) if (t.group) (groups.get(t.group) ?? groups.set(t.group, new Set()).get(t.group)!).add(t.version);
    return [...groups].map(([name, versions]) => {
      const list = [...versions].sort().reverse().map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
      return { name, versions: list, preferredVersion: list[0]! };
    });
  }

  #resourceList(group: string, version: string): unknown {
    const types = [...this.#types.values()].filter((t) => t.group === group && t.version === version);
    if (types.length === 0) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group ? `${group}/${version}` : version,
      resources: types.flatMap((t) => [
        { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs, ...(t.shortNames.length ? { shortNames: t.shortNames } : {}), ...(t.categories.length ? { categories: t.categories } : {}) },
        ...(t.status ? [{ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] }] : []),
      ]),
    };
  }

  #selectors(target: Target, query: Record<string, string>): { labels?: Matcher; fields?: FieldMatcher } {
    try {
      return {
        ...(query['labelSelector'] ? { labels: parseLabelSelector(query['labelSelector']) } : {}),
        ...(query['fieldSelector'] ? { fields: parseFieldSelector(query['fieldSelector'], target.type.fieldLabels) } : {}),
      };
    } catch (err) {
      if (err instanceof SelectorError) throw new ApiError(400, 'BadRequest', err.message);
      throw err;
    }
  }

  #matching(target: Target, query: Record<string, string>): KubeJson[] {
    const { labels, fields } = this.#selectors(target, query);
    return this.store
      .list(storageKey(target.type), target.namespace)
      .filter((o) => (!labels || labels(o.metadata.labels ?? {})) && (!fields || fields(o)));
  }

  #list(target: Target, query: Record<string, string>): unknown {
    // Items carry no apiVersion/kind in a list, as the real server's JSON lists do.
    const items = this.#matching(target, query).map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    return { kind: target.type.listKind, apiVersion: apiVersionOf(target.type), metadata: { resourceVersion: String(this.store.revision) }, items };
  }

  #watch(target: Target, query: Record<string, string>, req: IncomingMessage, res: ServerResponse): void {
    const { labels, fields } = this.#selectors(target, query);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const write = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    const rv = query['resourceVersion'];
    const matches = (o: KubeJson) => (!labels || labels(o.metadata.labels ?? {})) && (!fields || fields(o));
    let timer: NodeJS.Timeout | undefined;
    let bookmarks: NodeJS.Timeout | undefined;
    const watcher: Watcher = {
      resource: storageKey(target.type),
      ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
      ...(labels ? { labels } : {}),
      ...(fields ? { fields } : {}),
      send: write,
      end: () => {
        if (!this.#watchers.delete(watcher)) return;
        clearTimeout(timer);
        clearInterval(bookmarks);
        res.end();
      },
    };
    const backlog: [string, KubeJson][] = [];
    if (!rv || rv === '0') {
      // No resourceVersion: the current state as ADDED events, then changes.
      for (const o of this.store.list(storageKey(target.type), target.namespace)) if (matches(o)) backlog.push(['ADDED', o]);
    } else {
      const from = Number(rv);
      const changes = Number.isInteger(from) ? this.store.since(from) : undefined;
      if (!changes) {
        write('ERROR', statusObject(new ApiError(410, 'Expired', `too old resource version: ${rv} (${this.store.compactedRevision})`)));
        res.end();
        return;
      }
      for (const c of changes) {
        if (c.resource !== watcher.resource || (target.namespace !== undefined && c.object.metadata.namespace !== target.namespace)) continue;
        const event = filtered(c, matches);
        if (event) backlog.push(event);
      }
    }
    for (const [type, o] of backlog) write(type, withTypeMeta(target.type, o));
    this.#watchers.add(watcher);
    req.on('close', () => watcher.end());
    const timeout = Number(query['timeoutSeconds']);
    if (timeout > 0) timer = setTimeout(() => watcher.end(), timeout * 1000);
    if (query['allowWatchBookmarks'] === 'true') {
      bookmarks = setInterval(() => write('BOOKMARK', { kind: target.type.kind, apiVersion: apiVersionOf(target.type), metadata: { resourceVersion: String(this.store.revision) } }), this.#options.bookmarkIntervalMs);
    }
  }

  #dispatch(change: Change): void {
    for (const w of this.#watchers) {
      if (w.resource !== change.resource || (w.namespace !== undefined && change.object.metadata.namespace !== w.namespace)) continue;
      const event = filtered(change, (o) => (!w.labels || w.labels(o.metadata.labels ?? {})) && (!w.fields || w.fields(o)));
      const type = [...this.#types.values()].find((t) => storageKey(t) === change.resource)!;
      if (event) w.send(event[0], withTypeMeta(type, event[1]));
    }
  }

  #checkBody(target: Target, body: Record<string, unknown>, forUpdate: boolean): KubeJson {
    const { type } = target;
    if (body['kind'] !== undefined && body['kind'] !== type.kind) throw new ApiError(400, 'BadRequest', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (kind ${String(body['kind'])} is not ${type.kind})`);
    const metadata = { ...((body['metadata'] ?? {}) as KubeJson['metadata']) };
    if (!metadata.name && !forUpdate && typeof metadata['generateName'] === 'string') metadata.name = `${metadata['generateName']}${Math.random().toString(36).slice(2, 7)}`;
    const errors: FieldError[] = [];
    if (!metadata.name) errors.push({ field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
    else if (!NAME.test(metadata.name) || metadata.name.length > 253) errors.push({ field: 'metadata.name', reason: 'FieldValueInvalid', message: `Invalid value: "${metadata.name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
    if (type.namespaced) {
      if (metadata.namespace !== undefined && metadata.namespace !== target.namespace) throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      metadata.namespace = target.namespace;
    } else delete metadata.namespace;
    for (const [k, v] of Object.entries(metadata.labels ?? {})) {
      if (!LABEL_KEY.test(k)) errors.push({ field: 'metadata.labels', reason: 'FieldValueInvalid', message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
      if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) errors.push({ field: 'metadata.labels', reason: 'FieldValueInvalid', message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
    }
    let object: KubeJson = { ...body, apiVersion: apiVersionOf(type), kind: type.kind, metadata };
    if (type.schema) {
      const { apiVersion, kind, metadata: meta, ...rest } = object;
      // apiVersion, kind and metadata are the server's (a root `required: [metadata]`, as in Cilium's CRDs, always holds).
      const required = type.schema.required?.filter((f) => !['apiVersion', 'kind', 'metadata'].includes(f));
      const root: JsonSchema = { ...type.schema, ...(required ? { required } : {}), properties: { ...type.schema.properties, metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } };
      const checked = validateAndPrune(root, rest, '', errors);
      object = { apiVersion, kind, metadata: meta, ...(checked.value as Record<string, unknown>) };
    }
    if (type.kind === 'CustomResourceDefinition') {
      try {
        resourcesOfDefinition(object);
      } catch (err) {
        if (err instanceof DefinitionError) errors.push({ field: err.field, reason: 'FieldValueInvalid', message: err.message });
        else throw err;
      }
    }
    if (errors.length > 0) {
      const group = type.group ? `.${type.group}` : '';
      throw new ApiError(422, 'Invalid', `${type.kind}${group} "${metadata.name ?? ''}" is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join(', ')}`, {
        name: metadata.name,
        group: type.group,
        kind: type.kind,
        causes: errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field })),
      });
    }
    return object;
  }

  #create(target: Target, body: Record<string, unknown>): KubeJson {
    if (target.subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    const object = this.#checkBody(target, body, false);
    if (target.namespace !== undefined && !this.store.get('/namespaces', undefined, target.namespace)) throw new ApiError(404, 'NotFound', `namespaces "${target.namespace}" not found`, { name: target.namespace, kind: 'namespaces' });
    const key = storageKey(target.type);
    if (this.store.get(key, target.namespace, object.metadata.name)) {
      throw new ApiError(409, 'AlreadyExists', `${resourceName(target.type)} "${object.metadata.name}" already exists`, { name: object.metadata.name, group: target.type.group, kind: target.type.plural });
    }
    const { resourceVersion: _rv, uid: _uid, ...metadata } = object.metadata;
    const fresh = this.#defaults(target.type, { ...object, metadata });
    const stored = this.store.create(key, fresh);
    if (target.type.kind === 'CustomResourceDefinition') return this.#established(stored);
    return stored;
  }

  #update(target: Target, body: Record<string, unknown>): KubeJson {
    const key = storageKey(target.type);
    const current = this.store.get(key, target.namespace, target.name!);
    if (!current) throw notFound(target.type, target.name!);
    const object = this.#checkBody(target, { ...body, metadata: { ...((body['metadata'] ?? {}) as object), name: (body['metadata'] as { name?: string } | undefined)?.name ?? target.name } }, true);
    if (object.metadata.name !== target.name) throw new ApiError(400, 'BadRequest', `the name of the object (${object.metadata.name}) does not match the name on the URL (${target.name})`);
    const rv = object.metadata.resourceVersion;
    if (!rv && target.type.custom) throw new ApiError(422, 'Invalid', `${target.type.kind}.${target.type.group} "${target.name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
    if (rv && rv !== current.metadata.resourceVersion) throw conflict(target.type, target.name!, 'the object has been modified; please apply your changes to the latest version and try again');
    let next: KubeJson;
    if (target.subresource === 'status') next = { ...current, status: object['status'] };
    else if (target.type.status) next = { ...object, status: current['status'] } as KubeJson;
    else next = object;
    if (next['status'] === undefined) delete next['status'];
    next = { ...next, metadata: { ...(target.subresource === 'status' ? current.metadata : next.metadata) } };
    const stored = this.store.update(key, next);
    if (target.type.kind === 'CustomResourceDefinition') return this.#established(stored);
    return stored;
  }

  #patch(target: Target, contentType: string, patch: unknown): KubeJson {
    const current = this.store.get(storageKey(target.type), target.namespace, target.name!);
    if (!current) throw notFound(target.type, target.name!);
    const type = contentType.split(';')[0]!.trim();
    let patched: unknown;
    try {
      if (type === 'application/merge-patch+json') patched = mergePatch(current, patch);
      else if (type === 'application/json-patch+json') patched = jsonPatch(current, patch);
      else if (type === 'application/strategic-merge-patch+json' && !target.type.custom) patched = strategicMerge(current, patch);
      else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${target.type.custom ? '' : ', application/strategic-merge-patch+json'}`);
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(422, 'Invalid', err.message);
      throw err;
    }
    const object = asObject(patched);
    // A patch naming a resourceVersion is conditional on it; one that does not applies to the current object.
    const rv = (asOptionalObject(asOptionalObject(patch)?.['metadata'])?.['resourceVersion'] as string | undefined) ?? current.metadata.resourceVersion;
    return this.#update(target, { ...object, metadata: { ...(object['metadata'] as object), resourceVersion: rv } });
  }

  #delete(type: ResourceType, namespace: string | undefined, name: string): KubeJson | undefined {
    const key = storageKey(type);
    const gone = this.store.delete(key, namespace, name);
    if (!gone) return undefined;
    if (type.kind === 'Namespace') {
      // No finalization: everything in it goes at once.
      for (const t of this.#uniqueTypes()) if (t.namespaced) for (const o of this.store.list(storageKey(t), name)) this.store.delete(storageKey(t), name, o.metadata.name);
    }
    if (type.kind === 'CustomResourceDefinition') {
      const defined = resourcesOfDefinition(gone);
      for (const t of defined) this.#types.delete(typeKey(t.group, t.version, t.plural));
      for (const o of this.store.list(storageKey(defined[0]!))) this.store.delete(storageKey(defined[0]!), o.metadata.namespace, o.metadata.name);
    }
    return gone;
  }

  #deleteCollection(target: Target, query: Record<string, string>): unknown {
    const doomed = this.#matching(target, query);
    for (const o of doomed) this.#delete(target.type, o.metadata.namespace, o.metadata.name);
    return { kind: target.type.listKind, apiVersion: apiVersionOf(target.type), metadata: { resourceVersion: String(this.store.revision) }, items: doomed };
  }

  #uniqueTypes(): ResourceType[] {
    const seen = new Map<string, ResourceType>();
    for (const t of this.#types.values()) seen.set(storageKey(t), t);
    return [...seen.values()];
  }

  /** What the real server's defaulting and controllers would have filled in at once. */
  #defaults(type: ResourceType, object: KubeJson): KubeJson {
    if (type.kind === 'Namespace') {
      return { ...object, metadata: { ...object.metadata, labels: { ...object.metadata.labels, 'kubernetes.io/metadata.name': object.metadata.name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
    }
    if (type.kind === 'Pod') return { ...object, status: { phase: 'Pending', ...(object['status'] as object | undefined) } };
    if (type.kind === 'Service') {
      const spec: Record<string, unknown> = { type: 'ClusterIP', ...(object['spec'] as Record<string, unknown> | undefined) };
      if (spec['clusterIP'] === undefined) {
        const n = this.#nextClusterIp++;
        spec['clusterIP'] = `10.96.${n >> 8}.${n & 255}`;
        spec['clusterIPs'] = [spec['clusterIP']];
      }
      return { ...object, spec };
    }
    return object;
  }

  /** A stored CRD starts serving its resources, and its status says so. */
  #established(crd: KubeJson): KubeJson {
    for (const [k, t] of this.#types) if (t.custom && `${t.plural}.${t.group}` === crd.metadata.name) this.#types.delete(k);
    for (const t of resourcesOfDefinition(crd)) this.#types.set(typeKey(t.group, t.version, t.plural), t);
    const names = (crd['spec'] as { names: Record<string, unknown> }).names;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = {
      acceptedNames: names,
      storedVersions: ((crd['spec'] as { versions: { name: string; storage?: boolean }[] }).versions.filter((v) => v.storage).map((v) => v.name)),
      conditions: [
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
      ],
    };
    return this.store.update(storageKey(builtinResources().find((t) => t.kind === 'CustomResourceDefinition')!), { ...crd, status });
  }
}

const WATCHING = Symbol('watching');

/**
 * An OpenAPI v2 document (gnostic's protobuf encoding, which kubectl 1.20 asks for) with no
 * definitions: kubectl then skips its client-side schema validation and computes strategic merge
 * patches from its compiled-in types. Fields: swagger (1) "2.0", info (2) { title (1), version (2) }.
 */
const OPENAPI_V2 = Buffer.from([0x0a, 0x03, ...Buffer.from('2.0'), 0x12, 0x0c, 0x0a, 0x04, ...Buffer.from('test'), 0x12, 0x04, ...Buffer.from('v1.0')]);

function typeKey(group: string, version: string | undefined, plural: string): string {
  return `${group}/${version ?? ''}/${plural}`;
}

function resourceName(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

function notFound(type: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${resourceName(type)} "${name}" not found`, { name, group: type.group, kind: type.plural });
}

function conflict(type: ResourceType, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resourceName(type)} "${name}": ${why}`, { name, group: type.group, kind: type.plural });
}

function statusObject(e: ApiError): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, ...(e.details ? { details: e.details } : {}), code: e.code };
}

function withTypeMeta(type: ResourceType, object: KubeJson): KubeJson {
  return { ...object, apiVersion: apiVersionOf(type), kind: type.kind };
}

function namespaceObject(name: string): KubeJson {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

/** The event a watcher with `matches` sees for a change: moving out of its selection is a DELETED, into it an ADDED. */
function filtered(change: Change, matches: (o: KubeJson) => boolean): [string, KubeJson] | undefined {
  const now = matches(change.object);
  if (change.type !== 'MODIFIED') return now ? [change.type, change.object] : undefined;
  const before = change.previous ? matches(change.previous) : false;
  if (now) return [before ? 'MODIFIED' : 'ADDED', change.object];
  return before ? ['DELETED', change.object] : undefined;
}

function asObject(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'BadRequest', 'the body of the request must be a JSON object');
  return value as Record<string, unknown>;
}

function asOptionalObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (Buffer.isBuffer(body)) {
    res.writeHead(status, { 'content-type': 'application/octet-stream' }).end(body);
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }).end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

/** A CA and a server certificate for 127.0.0.1 and localhost (P-256, a day), made with openssl in `dir`. */
function makePki(dir: string): { ca: string; cert: string; key: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=cilia test kube-apiserver CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc', '-addext', 'extendedKeyUsage=serverAuth');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-copy_extensions', 'copy');
  return { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), cert: readFileSync(join(dir, 'server.pem'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8') };
}
