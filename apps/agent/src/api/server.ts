import { chownSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { AgentStatus, ApiError, ConfigView, MetricFamilyView, PluginStatus } from '@cilia/api-client';
import { invokeRoute, type ApiRequestError, type ApiRoute } from '@cilia/core';
import { fastify, type FastifyInstance } from 'fastify';
import { openApiDocument, type RouteDescription } from './openapi.js';

/** Requests handled at once; more are answered 429 rather than queued without bound. */
const MAX_IN_FLIGHT = 256;

/** What the API serves; the agent supplies it. The answers are the wire types of `@cilia/api-client`. */
export interface ApiHandlers {
  status(): AgentStatus;
  plugins(): readonly PluginStatus[];
  config(): ConfigView;
  metrics(): Promise<readonly MetricFamilyView[]>;
}

/** The routes the agent serves itself, as the reference describes them. */
export const BUILTIN_ROUTES: readonly RouteDescription[] = [
  { method: 'GET', path: '/v1/status', summary: "the agent's health, problems, plugins and kernel BPF features" },
  { method: 'GET', path: '/v1/plugins', summary: 'every plugin: origin, state, what it provides and requires, the datapath slots it fills' },
  { method: 'GET', path: '/v1/config', summary: 'the effective config, defaults applied, and the files it came from' },
  { method: 'GET', path: '/v1/metrics', summary: 'every metric of /metrics as JSON: each family with its samples (histograms as _bucket, _sum, _count)' },
  { method: 'GET', path: '/v1/openapi.json', summary: 'this API as an OpenAPI 3.1 document' },
];

/** Options of {@link ApiServer}. */
export interface ApiServerOptions {
  /** Requests handled at once before new ones are answered 429 (default 256). */
  readonly maxInFlight?: number;
  /** The agent's version, for the OpenAPI document. */
  readonly version?: string;
}

/**
 * The agent's HTTP API on a unix socket, created with mode 0660 (never more open, not even for an
 * instant). Plugins add routes; a route's schemas check its requests before its handler runs.
 */
export class ApiServer {
  readonly #app: FastifyInstance;
  readonly #routes: RouteDescription[] = [...BUILTIN_ROUTES];
  #socket?: string;
  #inFlight = 0;

  constructor(handlers: ApiHandlers, options: ApiServerOptions = {}) {
    // Policy imports carry whole policy sets (thousands of documents); fastify's 1 MiB default is too small.
    this.#app = fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
    const limit = options.maxInFlight ?? MAX_IN_FLIGHT;
    this.#app.addHook('onRequest', async (_req, reply) => {
      if (this.#inFlight >= limit) return reply.code(429).header('retry-after', '1').send({ error: `the agent is handling ${limit} requests already; try again` } satisfies ApiError);
      this.#inFlight++;
      reply.raw.once('close', () => this.#inFlight--);
      return undefined;
    });
    this.#app.get('/v1/status', async () => handlers.status());
    this.#app.get('/v1/plugins', async () => handlers.plugins());
    this.#app.get('/v1/config', async () => handlers.config());
    this.#app.get('/v1/metrics', async () => handlers.metrics());
    this.#app.get('/v1/openapi.json', async () => openApiDocument(this.#routes, options.version ?? '0.0.0'));
    this.#app.setNotFoundHandler(async (req, reply) => {
      const body: ApiError = { error: `no such API route: ${req.method} ${req.url}` };
      return reply.code(404).send(body);
    });
    this.#app.setErrorHandler(async (err: { message: string; statusCode?: number }, _req, reply) => {
      const body: ApiError = { error: err.message };
      return reply.code(err.statusCode && err.statusCode >= 400 ? err.statusCode : 500).send(body);
    });
  }

  /**
   * Adds plugin routes (before `listen`). They answer 503 while `ready()` is false, and map an
   * `ApiRequestError` to its status with the offending field's path.
   */
  addRoutes(routes: readonly ApiRoute[], ready: () => boolean): void {
    for (const route of routes) {
      this.#routes.push(route);
      this.#app.route({
        method: route.method,
        url: route.path,
        handler: async (req, reply) => {
          if (!ready()) return reply.code(503).send({ error: 'the agent is starting or stopping; try again' } satisfies ApiError);
          try {
            const res = await invokeRoute(route, { params: (req.params ?? {}) as Record<string, string>, query: req.query, body: req.body });
            return reply.code(res.status ?? 200).send(res.body);
          } catch (err) {
            if (isRequestError(err)) return reply.code(err.status).send({ error: err.message, ...(err.path ? { path: err.path } : {}) } satisfies ApiError);
            throw err;
          }
        },
      });
    }
  }

  /**
   * Listens on `socket` — created with mode 0660 under a umask, owned by `group` when given —
   * replacing a stale socket file but refusing one another agent serves, and anything at the path
   * that is not a socket.
   */
  async listen(socket: string, group?: number): Promise<void> {
    mkdirSync(dirname(socket), { recursive: true });
    const existing = lstatOrUndefined(socket);
    if (existing && !existing.isSocket()) throw new Error(`agent.apiSocket: ${socket} exists and is not a socket; refusing to replace it`);
    if (existing && (await isServed(socket))) throw new Error(`another process is serving the API socket ${socket}`);
    if (existing) rmSync(socket);
    const umask = process.umask(0o117);
    try {
      await this.#app.listen({ path: socket });
    } finally {
      process.umask(umask);
    }
    if (group !== undefined) chownSync(socket, -1, group);
    this.#socket = socket;
  }

  /** Stops serving and removes the socket file. */
  async close(): Promise<void> {
    await this.#app.close();
    if (this.#socket) rmSync(this.#socket, { force: true });
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function isServed(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

/** Whether `err` is a route's refusal (compared by name: a plugin may carry its own copy of core). */
function isRequestError(err: unknown): err is ApiRequestError {
  return (err as Error)?.name === 'ApiRequestError';
}
