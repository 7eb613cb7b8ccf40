import { request } from 'node:http';
import type { AgentStatus, ApiError, PluginStatus } from '@cilia/core';
import { CliError } from './errors.js';

/** Body of `GET /v1/config`. */
export interface ConfigView {
  /** Config files the agent read, preset first. */
  readonly sources: readonly string[];
  /** The effective configuration, defaults applied. */
  readonly config: Record<string, unknown>;
}

/** Options of {@link AgentClient}. */
export interface AgentClientOptions {
  /** Path of the agent's API unix socket. */
  readonly socketPath: string;
  /** How long one request may take before it is abandoned. Default 10 s. */
  readonly timeoutMs?: number;
}

// Errors that mean "nobody is listening there", as opposed to a broken conversation.
const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED']);

/** The agent could not be reached on its socket. */
export class AgentUnreachableError extends CliError {
  readonly socketPath: string;
  readonly code: string | undefined;

  constructor(socketPath: string, cause: NodeJS.ErrnoException) {
    const reason = describeSocketError(cause);
    const hint = cause.code && NOT_RUNNING.has(cause.code) ? ' (is cilia-agent running?)' : '';
    super(`cannot reach the agent at ${socketPath}: ${reason}${hint}`);
    this.name = 'AgentUnreachableError';
    this.socketPath = socketPath;
    this.code = cause.code;
  }
}

/** The agent answered with a non-2xx status; `message` is the API's `error` text. */
export class AgentApiError extends CliError {
  readonly status: number;
  readonly body: ApiError | undefined;

  constructor(status: number, message: string, body?: ApiError) {
    super(message);
    this.name = 'AgentApiError';
    this.status = status;
    this.body = body;
  }
}

/** A small client of the agent's HTTP API on its unix socket. */
export class AgentClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;

  constructor(options: AgentClientOptions) {
    this.socketPath = options.socketPath;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** `GET /v1/status`. */
  status(): Promise<AgentStatus> {
    return this.get<AgentStatus>('/v1/status');
  }

  /** `GET /v1/plugins`. */
  plugins(): Promise<PluginStatus[]> {
    return this.get<PluginStatus[]>('/v1/plugins');
  }

  /** `GET /v1/config`. */
  config(): Promise<ConfigView> {
    return this.get<ConfigView>('/v1/config');
  }

  /** GETs `path` and parses the JSON body; non-2xx answers become {@link AgentApiError}. */
  get<T>(path: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, path, method: 'GET', headers: { accept: 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new CliError(`reading the agent's answer to GET ${path}: ${err.message}`)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve(interpret<T>(path, status, text));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.setTimeout(this.#timeoutMs, () => {
        req.destroy(new CliError(`the agent at ${this.socketPath} did not answer GET ${path} within ${this.#timeoutMs} ms`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(err instanceof CliError ? err : new AgentUnreachableError(this.socketPath, err));
      });
      req.end();
    });
  }
}

function interpret<T>(path: string, status: number, text: string): T {
  let body: unknown;
  let parsed = true;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = false;
  }
  if (status < 200 || status > 299) {
    const apiError = isApiError(body) ? body : undefined;
    if (!apiError) throw new AgentApiError(status, `the agent answered GET ${path} with HTTP ${status} and no error message`);
    const where = apiError.path ? ` (at ${apiError.path})` : '';
    throw new AgentApiError(status, `${apiError.error}${where}`, apiError);
  }
  if (!parsed || body === undefined) throw new CliError(`the agent answered GET ${path} with a body that is not JSON`);
  return body as T;
}

function isApiError(body: unknown): body is ApiError {
  return typeof body === 'object' && body !== null && typeof (body as ApiError).error === 'string';
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such socket';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EACCES':
      return 'permission denied (run as root or as a member of the socket group)';
    case 'ENOTSOCK':
      return 'not a socket';
    default:
      return err.message;
  }
}
