import type { PluginStatus } from './host.js';
import type { BpfFeatures } from './services/datapath.js';

/** Overall health: `ok` when every plugin started, `degraded` when something needs attention. */
export type Health = 'ok' | 'degraded' | 'starting' | 'stopping' | 'failed';

/** Body of `GET /v1/status` on the agent's API socket. */
export interface AgentStatus {
  /** The agent's version. */
  readonly version: string;
  /** Plugin API version (`@cilia/core`). */
  readonly apiVersion: string;
  readonly node: string;
  /** Seconds since the agent process started. */
  readonly uptimeSeconds: number;
  readonly startedAt: string;
  readonly health: Health;
  /** Why health is not `ok`, one line each. */
  readonly problems: readonly string[];
  readonly plugins: readonly PluginStatus[];
  /** Kernel BPF features, once the datapath library has probed them. */
  readonly bpf?: BpfFeatures;
}

/** Body of every non-2xx API response. */
export interface ApiError {
  readonly error: string;
  /** Field path, when the request itself was at fault. */
  readonly path?: string;
}

/** An HTTP method an {@link ApiRoute} answers. */
export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route handler receives. */
export interface ApiRequest {
  /** Path parameters, e.g. `{ id: '12' }` for `/v1/endpoints/:id`. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** Parsed JSON body, if any; validate it before use. */
  readonly body: unknown;
}

/** What a route handler returns; `status` defaults to 200. */
export interface ApiResponse {
  readonly status?: number;
  readonly body: unknown;
}

/**
 * A route on the agent's API socket, contributed by a plugin through `Tokens.ApiRoutes`.
 * Routes answer 503 until every plugin has started.
 */
export interface ApiRoute {
  readonly method: ApiMethod;
  /** Path with `:name` parameters, under `/v1/`. */
  readonly path: string;
  handler(request: ApiRequest): Promise<ApiResponse> | ApiResponse;
}

/**
 * A request the handler refuses: answered with `status` (default 400) and
 * `{ error: message, path }`, where `path` names the offending field.
 */
export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly path?: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/**
 * Says what is wrong right now, for `cilia status`: each line joins the status's `problems`
 * (prefixed with the reporter's name) and makes health `degraded`. Provided through
 * `Tokens.HealthReporters`; called on every status request, so keep it cheap.
 */
export interface HealthReporter {
  readonly name: string;
  problems(): readonly string[];
}
