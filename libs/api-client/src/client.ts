import { request as httpRequest, type IncomingMessage } from 'node:http';
import { AgentApiError, AgentClientError, AgentResponseError, AgentTimeoutError, AgentUnreachableError, isApiError } from './errors.js';
import type {
  AgentStatus,
  BandwidthReport,
  LbMapsReport,
  ServiceChangeResponse,
  ServiceDeleteQuery,
  ServiceInfo,
  ServiceListResponse,
  ServiceUpsertRequest,
  BpfCtEntry,
  BpfEndpointEntry,
  BpfIpCacheEntry,
  BpfMapSummary,
  BpfNatEntry,
  BpfProgramList,
  ConfigView,
  Endpoint,
  EndpointAttachment,
  EndpointCreateRequest,
  EndpointDeleteResponse,
  EndpointDetail,
  EndpointGcRequest,
  EndpointGcResponse,
  EndpointListQuery,
  Identity,
  IpCacheEntry,
  ManifestsReport,
  MetricFamilyView,
  NodeListItem,
  PluginStatus,
  PolicyDeleteQuery,
  PolicyDeleteResponse,
  PolicyDeleteSelector,
  PolicyImportRequest,
  PolicyImportResponse,
  PolicyListResponse,
  PolicyTraceRequest,
  PolicyTraceResponse,
} from './types.js';
import type { FlowRecord, FlowsRequest, FlowsStatus, FlowsStreamItem, ServiceMapResponse } from './flows.js';
import { waitForPolicyRevision, type PolicyWaitOptions } from './wait.js';

/** Where the agent listens unless its config says otherwise (`agent.apiSocket`). */
export const DEFAULT_SOCKET = '/var/run/cilia/cilia.sock';

/** An HTTP method of the agent's API. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Options of {@link AgentClient}. */
export interface AgentClientOptions {
  /** The agent's API unix socket. Default {@link DEFAULT_SOCKET}. */
  readonly socketPath?: string;
  /** How long a read (GET) may take, from connecting to the last byte. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long a change (POST, PUT, PATCH, DELETE) may take: creating an endpoint or importing policies does real work. Default 30 s. */
  readonly writeTimeoutMs?: number;
}

/** One request through {@link AgentClient.request}. */
export interface RequestOptions {
  /** Query parameters; undefined ones are left out. */
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Overrides the client's timeout for this request. */
  readonly timeoutMs?: number;
}

/**
 * A typed client of the agent's HTTP API on its unix socket: one method per route. A failure
 * is an {@link AgentClientError}: {@link AgentUnreachableError} (nobody listening),
 * {@link AgentTimeoutError}, {@link AgentApiError} (a non-2xx answer, with the agent's `error`
 * and `path`) or {@link AgentResponseError} (an answer that cannot be read).
 *
 * ```ts
 * const client = new AgentClient({ socketPath: '/var/run/cilia/cilia.sock' });
 * const { health } = await client.status();
 * const { revision } = await client.policy.import(documents);
 * await client.policy.wait(revision, { timeoutMs: 30_000 });
 * ```
 */
export class AgentClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;
  readonly #writeTimeoutMs: number;

  constructor(options: AgentClientOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_SOCKET;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 30_000;
  }

  /** `GET /v1/status`: node, version, health and its problems, plugins, BPF features. */
  status(): Promise<AgentStatus> {
    return this.request('GET', '/v1/status');
  }

  /** `GET /v1/plugins`: every plugin with its origin, state, provided and required services. */
  plugins(): Promise<PluginStatus[]> {
    return this.request('GET', '/v1/plugins');
  }

  /** `GET /v1/config`: the effective config (defaults applied) and the files it was read from. */
  config(): Promise<ConfigView> {
    return this.request('GET', '/v1/config');
  }

  /** `GET /v1/manifests`: what the manifest directory defines, and the files refused. */
  manifests(): Promise<ManifestsReport> {
    return this.request('GET', '/v1/manifests');
  }

  /** `/v1/endpoints`. */
  readonly endpoints = {
    /** `GET /v1/endpoints`, optionally only a container's (`containerId`, `interfaceName`). */
    list: (query: EndpointListQuery = {}): Promise<Endpoint[]> => this.request('GET', '/v1/endpoints', { query: { ...query } }),
    /** `GET /v1/endpoints/:id`, with its realized policy map when policy is enabled. */
    get: (id: number): Promise<EndpointDetail> => this.request('GET', `/v1/endpoints/${id}`),
    /** `POST /v1/endpoints`: creates an endpoint (in a new netns unless `netns` is given). */
    create: (request: EndpointCreateRequest): Promise<Endpoint> => this.request('POST', '/v1/endpoints', { body: request }),
    /** `DELETE /v1/endpoints/:id`; a missing endpoint is an {@link AgentApiError} 404. */
    delete: (id: number): Promise<EndpointDeleteResponse> => this.request('DELETE', `/v1/endpoints/${id}`),
    /** `DELETE /v1/endpoints?containerId=&interfaceName=`: the endpoint of one CNI attachment; `deleted: false` when there was none. */
    deleteAttachment: (attachment: EndpointAttachment): Promise<EndpointDeleteResponse> =>
      this.request('DELETE', '/v1/endpoints', { query: { ...attachment } }),
    /** `POST /v1/endpoints/gc`: deletes every CNI-created endpoint not in `valid`. */
    gc: (valid: readonly EndpointAttachment[]): Promise<EndpointGcResponse> =>
      this.request('POST', '/v1/endpoints/gc', { body: { valid } satisfies EndpointGcRequest }),
  };

  /** `/v1/identities`. */
  readonly identities = {
    /** `GET /v1/identities`: reserved, cluster-wide and local identities. */
    list: (): Promise<Identity[]> => this.request('GET', '/v1/identities'),
    /** `GET /v1/identities/:id`. */
    get: (id: number): Promise<Identity> => this.request('GET', `/v1/identities/${id}`),
  };

  /** `/v1/ipcache`. */
  readonly ipcache = {
    /** `GET /v1/ipcache`: every prefix → identity, tunnel endpoint and node, sorted by prefix. */
    list: (): Promise<IpCacheEntry[]> => this.request('GET', '/v1/ipcache'),
  };

  /** `/v1/bandwidth` (the bandwidth manager plugin). */
  readonly bandwidth = {
    /** `GET /v1/bandwidth`: the endpoints' egress and ingress limits as the datapath holds them. */
    list: (): Promise<BandwidthReport> => this.request('GET', '/v1/bandwidth'),
  };

  /** `/v1/services` (the kube-proxy replacement plugin). */
  readonly services = {
    /** `GET /v1/services`: every frontend with its id, owner and backends, refused and skipped Services. */
    list: (): Promise<ServiceListResponse> => this.request('GET', '/v1/services'),
    /** `GET /v1/services/:id`. */
    get: (id: number): Promise<ServiceInfo> => this.request('GET', `/v1/services/${id}`),
    /** `PUT /v1/services`: adds or replaces a service of the `api` owner by its frontend; a refusal is a 400 naming the field. */
    upsert: (service: ServiceUpsertRequest): Promise<ServiceChangeResponse> => this.request('PUT', '/v1/services', { body: service }),
    /** `DELETE /v1/services?frontend=ADDRESS:PORT/PROTOCOL`: a service of the `api` owner; 404 when there is none. */
    delete: (frontend: string): Promise<ServiceChangeResponse> => this.request('DELETE', '/v1/services', { query: { frontend } satisfies ServiceDeleteQuery }),
  };

  /** `/v1/lb` (the kube-proxy replacement plugin). */
  readonly lb = {
    /** `GET /v1/lb`: the LB maps as written (`cilia bpf lb list`). */
    maps: (): Promise<LbMapsReport> => this.request('GET', '/v1/lb'),
  };

  /** `/v1/bpf/*`: what the datapath's maps and the kernel hold, entry by entry. */
  readonly bpf = {
    /** `GET /v1/bpf/ct`: the connection tracking entries (`cilia_ct`). */
    ct: (): Promise<BpfCtEntry[]> => this.request('GET', '/v1/bpf/ct'),
    /** `GET /v1/bpf/nat`: the source NAT entries (`cilia_snat`). */
    nat: (): Promise<BpfNatEntry[]> => this.request('GET', '/v1/bpf/nat'),
    /** `GET /v1/bpf/ipcache`: the ipcache as the datapath's LPM map holds it. */
    ipcache: (): Promise<BpfIpCacheEntry[]> => this.request('GET', '/v1/bpf/ipcache'),
    /** `GET /v1/bpf/endpoints`: the endpoints map (`cilia_endpoints`). */
    endpoints: (): Promise<BpfEndpointEntry[]> => this.request('GET', '/v1/bpf/endpoints'),
    /** `GET /v1/bpf/progs`: this agent's programs, with run counts when the kernel counts them. */
    progs: (): Promise<BpfProgramList> => this.request('GET', '/v1/bpf/progs'),
  };

  /** `GET /v1/maps`: every map pinned under the agent's pin root, with its entries, capacity and pressure. */
  maps(): Promise<BpfMapSummary[]> {
    return this.request('GET', '/v1/maps');
  }

  /** `GET /v1/metrics`: every metric the agent exposes on `/metrics`, as JSON. */
  metrics(): Promise<MetricFamilyView[]> {
    return this.request('GET', '/v1/metrics');
  }

  /** `/v1/nodes`. */
  readonly nodes = {
    /** `GET /v1/nodes`: the nodes registered in the KvStore. */
    list: (): Promise<NodeListItem[]> => this.request('GET', '/v1/nodes'),
  };

  /** `/v1/policy`. */
  readonly policy = {
    /** `POST /v1/policy`: imports `documents` as one change; a refused one is an {@link AgentApiError} 400 whose `path` is `documents[i]…`. */
    import: (documents: readonly unknown[]): Promise<PolicyImportResponse> =>
      this.request('POST', '/v1/policy', { body: { documents } satisfies PolicyImportRequest }),
    /** `GET /v1/policy`: the revision, the enforcement mode and every rule. */
    get: (): Promise<PolicyListResponse> => this.request('GET', '/v1/policy'),
    /** `DELETE /v1/policy`: by name (namespace and kind narrowing it), or `{ all: true }`; nothing matched is a 404. */
    delete: (selector: PolicyDeleteSelector): Promise<PolicyDeleteResponse> => this.request('DELETE', '/v1/policy', { query: { ...deleteQuery(selector) } }),
    /** `POST /v1/policy/trace`: the verdict for `src` → `dst` on `dport`/`protocol`, and the rules that decide it. */
    trace: (request: PolicyTraceRequest): Promise<PolicyTraceResponse> => this.request('POST', '/v1/policy/trace', { body: request }),
    /** Polls `GET /v1/endpoints` until every endpoint has realized `revision` (see {@link waitForPolicyRevision}). */
    wait: (revision: number, options?: PolicyWaitOptions): Promise<void> => waitForPolicyRevision(() => this.endpoints.list(), revision, options),
  };

  /** `/v1/flows` (the `@cilia/flow` plugin). */
  readonly flows = {
    /** `POST /v1/flows`: the buffered flows matching `request` (oldest first). */
    list: (request: Omit<FlowsRequest, 'follow'> = {}): Promise<FlowRecord[]> => this.request('POST', '/v1/flows', { body: { ...request, follow: false } }),
    /**
     * `POST /v1/flows` with `follow`: the buffered flows, then each new one and every report of
     * events lost, as they come, until `signal` aborts (or the agent goes: then it throws).
     */
    follow: (request: Omit<FlowsRequest, 'follow'>, signal?: AbortSignal): AsyncIterable<FlowsStreamItem> =>
      this.stream<FlowsStreamItem>('POST', '/v1/flows', { body: { ...request, follow: true } }, signal),
    /** `GET /v1/flows/status`: flows buffered, seen, lost (datapath and agent side). */
    status: (): Promise<FlowsStatus> => this.request('GET', '/v1/flows/status'),
    /** `POST /v1/flows/servicemap`: the service map of the buffered flows matching `request`. */
    serviceMap: (request: Omit<FlowsRequest, 'follow'> = {}): Promise<ServiceMapResponse> => this.request('POST', '/v1/flows/servicemap', { body: request }),
  };

  /**
   * A request answered with NDJSON, one item a line, read as they come until the answer ends
   * or `signal` aborts (which ends the iteration without an error).
   */
  async *stream<T>(method: HttpMethod, path: string, options: RequestOptions = {}, signal?: AbortSignal): AsyncGenerator<T> {
    const route = `${method} ${path}`;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string | number> = { accept: 'application/x-ndjson' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socketPath, path: withQuery(path, options.query), method, headers, ...(signal ? { signal } : {}) }, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => reject(err.name === 'AbortError' ? err : new AgentUnreachableError(this.socketPath, route, err)));
      req.end(payload);
    }).catch((err: Error) => {
      if (err.name === 'AbortError') return undefined;
      throw err;
    });
    if (!res) return;
    if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      this.#interpret(route, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
      return;
    }
    let rest = '';
    try {
      for await (const chunk of res) {
        rest += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line.trim() !== '') yield JSON.parse(line) as T;
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      throw new AgentResponseError(this.socketPath, route, `the stream broke: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * One request to any route (a plugin's own, say) and its parsed JSON answer. A non-2xx answer
   * rejects with {@link AgentApiError}.
   */
  request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const route = `${method} ${path}`;
    const target = withQuery(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const timeoutMs = options.timeoutMs ?? (method === 'GET' ? this.#timeoutMs : this.#writeTimeoutMs);
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    return new Promise<T>((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socketPath, path: target, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => req.destroy(new AgentResponseError(this.socketPath, route, `an incomplete answer: ${err.message}`, { cause: err })));
        res.on('end', () => {
          clearTimeout(timer);
          try {
            resolve(this.#interpret<T>(route, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
      });
      const timer = setTimeout(() => req.destroy(new AgentTimeoutError(this.socketPath, route, timeoutMs)), timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(err instanceof AgentClientError ? err : new AgentUnreachableError(this.socketPath, route, err));
      });
      req.end(payload);
    });
  }

  #interpret<T>(route: string, status: number, text: string): T {
    let body: unknown;
    let parsed = true;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (status < 200 || status > 299) throw new AgentApiError(this.socketPath, route, status, isApiError(body) ? body : undefined);
    if (!parsed || body === undefined) throw new AgentResponseError(this.socketPath, route, 'a body that is not JSON');
    return body as T;
  }
}

function withQuery(path: string, query: RequestOptions['query']): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function deleteQuery(selector: PolicyDeleteSelector): PolicyDeleteQuery {
  if ('all' in selector) return { all: 'true' };
  return { name: selector.name, namespace: selector.namespace, kind: selector.kind };
}
