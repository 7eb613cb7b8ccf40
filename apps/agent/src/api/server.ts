import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { AgentStatus, ApiError, ConfigView, PluginStatus } from '@cilia/api-client';
import type { ApiRequestError, ApiRoute } from '@cilia/core';
import { fastify, type FastifyInstance } from 'fastify';

/** What the API serves; the agent supplies it. The answers are the wire types of `@cilia/api-client`. */
export interface ApiHandlers {
  status(): AgentStatus;
  plugins(): readonly PluginStatus[];
  config(): ConfigView;
}

/** The agent's HTTP API on a unix socket (mode 0660). Later issues add routes here. */
export class ApiServer {
  readonly #app: FastifyInstance;
  #socket?: string;

  constructor(handlers: ApiHandlers) {
    // Policy imports carry whole policy sets (thousands of documents); fastify's 1 MiB default is too small.
    this.#app = fastify({ logger: false, bodyLimit: 32 * 1024 * 1024 });
    this.#app.get('/v1/status', async () => handlers.status());
    this.#app.get('/v1/plugins', async () => handlers.plugins());
    this.#app.get('/v1/config', async () => handlers.config());
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
      this.#app.route({
        method: route.method,
        url: route.path,
        handler: async (req, reply) => {
          if (!ready()) return reply.code(503).send({ error: 'the agent is starting or stopping; try again' } satisfies ApiError);
          try {
            const res = await route.handler({
              params: (req.params ?? {}) as Record<string, string>,
              query: (req.query ?? {}) as Record<string, string>,
              body: req.body,
            });
            return reply.code(res.status ?? 200).send(res.body);
          } catch (err) {
            // Compared by name: a plugin may carry its own copy of @cilia/core.
            if ((err as Error)?.name === 'ApiRequestError') {
              const e = err as ApiRequestError;
              return reply.code(e.status).send({ error: e.message, ...(e.path ? { path: e.path } : {}) } satisfies ApiError);
            }
            throw err;
          }
        },
      });
    }
  }

  /** Listens on `socket`, replacing a stale socket file but refusing one another agent serves. */
  async listen(socket: string): Promise<void> {
    mkdirSync(dirname(socket), { recursive: true });
    if (await isServed(socket)) throw new Error(`another process is serving the API socket ${socket}`);
    rmSync(socket, { force: true });
    await this.#app.listen({ path: socket });
    chmodSync(socket, 0o660);
    this.#socket = socket;
  }

  /** Stops serving and removes the socket file. */
  async close(): Promise<void> {
    await this.#app.close();
    if (this.#socket) rmSync(this.#socket, { force: true });
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
