import type { ApiError } from '@cilia/core';

/**
 * Every failure of an {@link AgentClient} call: catch this one class to handle them all. The
 * message is one line a person can act on; the subclasses carry the details.
 */
export class AgentClientError extends Error {
  /** The agent's socket. */
  readonly socketPath: string;
  /** The request, e.g. `GET /v1/status` (without the query). */
  readonly route: string;

  constructor(message: string, socketPath: string, route: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AgentClientError';
    this.socketPath = socketPath;
    this.route = route;
  }
}

// Errors that mean "nobody is listening there", as opposed to a broken conversation.
const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED']);

/** Nobody answered on the socket: `cannot reach the agent at <socket>: <reason>`. */
export class AgentUnreachableError extends AgentClientError {
  /** The errno code (`ENOENT`, `ECONNREFUSED`, `EACCES`, …). */
  readonly code: string | undefined;

  constructor(socketPath: string, route: string, cause: NodeJS.ErrnoException) {
    const hint = cause.code && NOT_RUNNING.has(cause.code) ? ' (is cilia-agent running?)' : '';
    super(`cannot reach the agent at ${socketPath}: ${describeSocketError(cause)}${hint}`, socketPath, route, { cause });
    this.name = 'AgentUnreachableError';
    this.code = cause.code;
  }
}

/** The agent took longer than the request's timeout; the request was abandoned. */
export class AgentTimeoutError extends AgentClientError {
  readonly timeoutMs: number;

  constructor(socketPath: string, route: string, timeoutMs: number) {
    super(`the agent at ${socketPath} did not answer ${route} within ${timeoutMs} ms`, socketPath, route);
    this.name = 'AgentTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The agent answered with a non-2xx status. `error` and `path` are the agent's `ApiError`
 * body; the message is `error`, followed by ` (at <path>)` when the agent named the field at
 * fault.
 */
export class AgentApiError extends AgentClientError {
  /** The HTTP status. */
  readonly status: number;
  /** The agent's `error` text; undefined when the answer carried none. */
  readonly error: string | undefined;
  /** The field path the agent named (`documents[2].spec`, `containerId`, …), if any. */
  readonly path: string | undefined;

  constructor(socketPath: string, route: string, status: number, body: ApiError | undefined) {
    const message = body
      ? `${body.error}${body.path ? ` (at ${body.path})` : ''}`
      : `the agent answered ${route} with HTTP ${status} and no error message`;
    super(message, socketPath, route);
    this.name = 'AgentApiError';
    this.status = status;
    this.error = body?.error;
    this.path = body?.path;
  }
}

/** The agent's answer could not be read (cut off, or a 2xx body that is not JSON). */
export class AgentResponseError extends AgentClientError {
  constructor(socketPath: string, route: string, reason: string, options?: ErrorOptions) {
    super(`the agent answered ${route} with ${reason}`, socketPath, route, options);
    this.name = 'AgentResponseError';
  }
}

/** Whether `body` is the agent's `{ error, path? }`. */
export function isApiError(body: unknown): body is ApiError {
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
