import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { AgentStatus, ApiError, PluginStatus } from '@cilia/core';
import { fastify, type FastifyInstance } from 'fastify';

/** What the API serves; the agent supplies it. */
export interface ApiHandlers {
  status(): AgentStatus;
  plugins(): readonly PluginStatus[];
  config(): { sources: readonly string[]; config: unknown };
}

/** The agent's HTTP API on a unix socket (mode 0660). Later issues add routes here. */
export class ApiServer {
  readonly #app: FastifyInstance;
  #socket?: string;

  constructor(handlers: ApiHandlers) {
    this.#app = fastify({ logger: false });
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
