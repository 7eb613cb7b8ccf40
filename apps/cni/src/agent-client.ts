import { request } from 'node:http';
import type { AgentStatus, ApiError, Endpoint, EndpointCreateRequest } from '@cilia/core';
import { CniError, ErrorCode } from './errors.js';

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

/** The agent's endpoint API (the B ⇄ C contract) over its unix socket. */
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
    const list = await this.call<Endpoint[]>('GET', `/v1/endpoints?${attachmentQuery(containerId, ifName)}`);
    // Filter again: an agent that ignored the query must not hand us someone else's endpoint.
    return list.find((e) => e.containerId === containerId && e.interfaceName === ifName);
  }

  createEndpoint(req: EndpointCreateRequest): Promise<Endpoint> {
    return this.call<Endpoint>('POST', '/v1/endpoints', req);
  }

  /** Deletes the endpoint of one attachment; false when there was none. */
  async deleteAttachment(containerId: string, ifName: string): Promise<boolean> {
    const res = await this.call<{ deleted: boolean }>('DELETE', `/v1/endpoints?${attachmentQuery(containerId, ifName)}`);
    return res.deleted;
  }

  /** Deletes every CNI-created endpoint not in `valid`; returns the deleted ids. */
  async gc(valid: readonly { containerId: string; interfaceName: string }[]): Promise<number[]> {
    const res = await this.call<{ deleted: number[] }>('POST', '/v1/endpoints/gc', { valid });
    return res.deleted;
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const route = `${method} ${path.split('?')[0]}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          path,
          method,
          agent: false,
          headers: {
            accept: 'application/json',
            ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(unreachable(this.socket, err)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              reject(new CniError(ErrorCode.AgentError, `the agent's answer to ${route} is not JSON (HTTP ${res.statusCode})`, text.slice(0, 500)));
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(new AgentHttpError(status, parsed as Partial<ApiError> | undefined, route));
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(Object.assign(new Error(`no answer to ${route} within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err) => reject(unreachable(this.socket, err)));
      req.end(payload);
    });
  }
}

function attachmentQuery(containerId: string, ifName: string): string {
  return new URLSearchParams({ containerId, interfaceName: ifName }).toString();
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
