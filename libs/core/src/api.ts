import type { z } from 'zod';
import { configProblems } from './config.js';
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
  /** What the agent runs without, by choice or for want of a kernel feature, one line each (health stays `ok`). */
  readonly notes?: readonly string[];
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
export interface ApiRequest<B = unknown, Q = Readonly<Record<string, string | undefined>>> {
  /** Path parameters, e.g. `{ id: '12' }` for `/v1/endpoints/:id`. */
  readonly params: Readonly<Record<string, string>>;
  /** The query, parsed by the route's `query` schema when it has one (each key given once otherwise). */
  readonly query: Q;
  /** The JSON body, parsed by the route's `body` schema when it has one; validate it before use otherwise. */
  readonly body: B;
}

/** What a route handler returns; `status` defaults to 200. */
export interface ApiResponse {
  readonly status?: number;
  readonly body: unknown;
}

/**
 * A route on the agent's API socket, contributed by a plugin through `Tokens.ApiRoutes`.
 * Routes answer 503 until every plugin has started. With a `body` or `query` schema, the agent
 * parses the request before the handler sees it and answers a request that does not fit with
 * 400 and `{ error, path }` naming the field; the schemas (and `response`) also make the API
 * reference. Declare one with {@link defineRoute} to have the handler typed by them.
 */
export interface ApiRoute {
  readonly method: ApiMethod;
  /** Path with `:name` parameters, under `/v1/`. */
  readonly path: string;
  /** One line for the API reference. */
  readonly summary?: string;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  /** The answer's shape, for the API reference (not checked at run time). */
  readonly response?: z.ZodType;
  handler(request: ApiRequest): Promise<ApiResponse> | ApiResponse;
}

/** A route whose handler is typed by its schemas (see {@link defineRoute}). */
export interface TypedApiRoute<B, Q> extends Omit<ApiRoute, 'handler' | 'body' | 'query'> {
  readonly body?: z.ZodType<B>;
  readonly query?: z.ZodType<Q>;
  handler(request: ApiRequest<B, Q>): Promise<ApiResponse> | ApiResponse;
}

/** Declares a route, its handler typed by the `body` and `query` schemas. */
export function defineRoute<B = unknown, Q = Readonly<Record<string, string | undefined>>>(route: TypedApiRoute<B, Q>): ApiRoute {
  // The agent hands the handler what the schemas parsed.
  return route as unknown as ApiRoute;
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
  /** Lines for the status's `notes` (prefixed with the name): worth saying, not a problem — a feature off for want of kernel support under `auto`, say. */
  notes?(): readonly string[];
}

/**
 * Runs a route as the agent does: the query and body parsed by its schemas, then its handler. A
 * request that does not fit is an {@link ApiRequestError} (400) naming the field; without a query
 * schema every query key must come once.
 */
export async function invokeRoute(
  route: ApiRoute,
  request: { readonly params?: Readonly<Record<string, string>>; readonly query?: unknown; readonly body?: unknown },
): Promise<ApiResponse> {
  const query = parsePart(route.query, request.query ?? {}, 'query');
  const body = route.body ? parsePart(route.body, request.body, 'body') : request.body;
  return route.handler({ params: request.params ?? {}, query: query as Record<string, string>, body });
}

function parsePart(schema: z.ZodType | undefined, value: unknown, part: 'query' | 'body'): unknown {
  if (!schema) {
    const repeated = Object.entries(value as Record<string, unknown>).find(([, v]) => Array.isArray(v));
    if (repeated) throw new ApiRequestError('given more than once', repeated[0]);
    return value;
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const [first, ...rest] = configProblems(result.error);
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  throw new ApiRequestError(`${first!.reason}${more}`, first!.path || part);
}

/**
 * A page the agent serves on its HTTP address (`agent.metricsAddress`, beside `/metrics`), for
 * browsers: contributed through `Tokens.WebPages`. Pages answer 503 until every plugin has
 * started; a render that throws `ApiRequestError` answers its status with its message.
 */
export interface WebPage {
  /** Path, e.g. `/servicemap`. */
  readonly path: string;
  /** e.g. `text/html; charset=utf-8`. */
  readonly contentType: string;
  render(query: Readonly<Record<string, string | undefined>>): string | Promise<string>;
}
