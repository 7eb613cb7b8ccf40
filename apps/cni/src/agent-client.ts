// Types only (erased at build): the plugin's startup loads nothing of @cilia/api-client.
import type {
  AgentStatus,
  ApiError,
  Endpoint,
  EndpointAttachment,
  EndpointCreateRequest,
  EndpointDeleteResponse,
  EndpointGcRequest,
  EndpointGcResponse,
  EndpointListQuery,
} from '@cilia/api-client';
import { CniError, ErrorCode } from './errors.js';
import { httpRequest } from './http.js';

/** A non-2xx answer from the agent. */
export class AgentHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Partial<ApiError> | undefined,
    readonly route: string,
  ) {
    super(`${route}: HTTP ${status}${body?.error ? `: ${body.error}` : ''}${body?.path ? ` (field ${body.path})` : ''}`);
    this.name = 'AgentHttpError';
  }
}

/**
 * The agent's endpoint API (the B ⇄ C contract) over its unix socket: the routes' types of
 * `@cilia/api-client` over the plugin's own small HTTP client ({@link httpRequest}), which
 * starts faster than node:http.
 */
export class AgentClient {
  constructor(
    readonly socket: string,
    private readonly timeoutMs: number,
  ) {}

  status(): Promise<AgentStatus> {
    return this.call<AgentStatus>('GET', '/v1/status');
  }

  /** The endpoint of one CNI attachment, if the agent has one. */
  async findAttachment(containerId: string, ifName: string): Promise<Endpoint | undefined> {
    const list = await this.call<Endpoint[]>('GET', `/v1/endpoints?${attachmentQuery({ containerId, interfaceName: ifName })}`);
    // Filter again: an agent that ignored the query must not hand us someone else's endpoint.
    return list.find((e) => e.containerId === containerId && e.interfaceName === ifName);
  }

  createEndpoint(req: EndpointCreateRequest): Promise<Endpoint> {
    return this.call<Endpoint>('POST', '/v1/endpoints', req);
  }

  /** Deletes the endpoint of one attachment; false when there was none. */
  async deleteAttachment(containerId: string, ifName: string): Promise<boolean> {
    const res = await this.call<EndpointDeleteResponse>('DELETE', `/v1/endpoints?${attachmentQuery({ containerId, interfaceName: ifName })}`);
    return res.deleted;
  }

  /** Deletes every CNI-created endpoint not in `valid`; returns the deleted ids. */
  async gc(valid: readonly EndpointAttachment[]): Promise<readonly number[]> {
    const res = await this.call<EndpointGcResponse>('POST', '/v1/endpoints/gc', { valid } satisfies EndpointGcRequest);
    return res.deleted;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const route = `${method} ${path.split('?')[0]}`;
    let res;
    try {
      res = await httpRequest(this.socket, method, path, body === undefined ? undefined : JSON.stringify(body), this.timeoutMs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code) throw unreachable(this.socket, e);
      throw new CniError(ErrorCode.AgentError, `bad answer from the agent to ${route}: ${e.message}`);
    }
    let parsed: unknown;
    try {
      parsed = res.body === '' ? undefined : JSON.parse(res.body);
    } catch {
      throw new CniError(ErrorCode.AgentError, `the agent's answer to ${route} is not JSON (HTTP ${res.status})`, res.body.slice(0, 500));
    }
    if (res.status >= 200 && res.status < 300) return parsed as T;
    throw new AgentHttpError(res.status, parsed as Partial<ApiError> | undefined, route);
  }
}

function attachmentQuery(query: Required<EndpointListQuery>): string {
  return new URLSearchParams({ ...query }).toString();
}

const REASONS: Record<string, string> = {
  ENOENT: 'the socket does not exist (is cilia-agent running?)',
  ECONNREFUSED: 'connection refused (is cilia-agent running?)',
  EACCES: 'permission denied',
};

/** Error code 100, naming the socket and why it could not be used. */
function unreachable(socket: string, err: NodeJS.ErrnoException): CniError {
  const reason = (err.code && REASONS[err.code]) ?? err.message;
  return new CniError(ErrorCode.AgentUnreachable, `agent not reachable at ${socket}: ${reason}`, err.code ? `${err.code}: ${err.message}` : undefined);
}
