import type {
  PolicyDeleteQuery,
  PolicyDeleteResponse,
  PolicyImportRequest,
  PolicyImportResponse,
  PolicyListResponse,
  PolicyTraceProtocol,
  PolicyTraceRequest,
  PolicyTraceResponse,
} from '@cilia/api-client';
import { ApiRequestError, type ApiRoute, type Labels } from '@cilia/core';
import type { PolicyFieldError } from './model.js';
import type { PolicySelector, PolicyService, PolicyTraceQuery } from './service.js';

/** Field errors listed in one 400 answer beyond the first (the rest are counted). */
const MORE_ERRORS_SHOWN = 4;

/**
 * `/v1/policy` on the agent socket: import (POST), delete (DELETE), list (GET) and trace
 * (POST /v1/policy/trace). A refused import answers 400 with the first bad field's path and
 * every reason; nothing changes then.
 */
export function policyRoutes(service: () => PolicyService): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/policy',
      handler: async (req) => {
        const documents = importBody(req.body);
        try {
          return { body: { revision: await service().import(documents) } satisfies PolicyImportResponse };
        } catch (err) {
          if ((err as Error)?.name !== 'PolicyValidationError') throw err;
          throw refusal((err as { errors?: readonly PolicyFieldError[] }).errors ?? [], (err as Error).message);
        }
      },
    },
    {
      method: 'DELETE',
      path: '/v1/policy',
      handler: async (req) => {
        const selector = deleteSelector(req.query);
        const result = await service().delete(selector);
        if (!result) throw new ApiRequestError(`no policy matches ${describeSelector(selector)}`, 'name' in selector ? 'name' : 'all', 404);
        return { body: result satisfies PolicyDeleteResponse };
      },
    },
    {
      method: 'GET',
      path: '/v1/policy',
      handler: () => {
        const repository = service().repository;
        return { body: { revision: repository.revision(), enforcement: repository.enforcementMode, rules: repository.rules() } satisfies PolicyListResponse };
      },
    },
    {
      method: 'POST',
      path: '/v1/policy/trace',
      handler: (req) => ({ body: service().repository.trace(traceQuery(req.body)) satisfies PolicyTraceResponse }),
    },
  ];
}

function importBody(body: unknown): unknown[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiRequestError('expected a JSON object { "documents": [...] }', '');
  const { documents } = body as { [K in keyof PolicyImportRequest]?: unknown };
  if (!Array.isArray(documents)) throw new ApiRequestError('expected a list of policy documents', 'documents');
  if (documents.length === 0) throw new ApiRequestError('expected at least one policy document', 'documents');
  return documents;
}

function refusal(errors: readonly PolicyFieldError[], fallback: string): ApiRequestError {
  const [first, ...rest] = errors;
  if (!first) return new ApiRequestError(fallback, 'documents');
  const shown = rest.slice(0, MORE_ERRORS_SHOWN).map((e) => `${e.path}: ${e.reason}`);
  const hidden = rest.length - shown.length;
  const more = rest.length === 0 ? '' : ` (also ${shown.join('; ')}${hidden > 0 ? `; and ${hidden} more` : ''})`;
  return new ApiRequestError(`${first.reason}${more}`, first.path);
}

function deleteSelector(query: PolicyDeleteQuery): PolicySelector {
  const { name, namespace, kind, all } = query;
  if (all !== undefined) {
    if (all !== 'true') throw new ApiRequestError(`all must be "true", got ${JSON.stringify(all)}`, 'all');
    if (name !== undefined || namespace !== undefined || kind !== undefined) throw new ApiRequestError('all=true deletes every policy; it takes no name, namespace or kind', 'all');
    return { all: true };
  }
  if (!name) throw new ApiRequestError('the name query parameter is required (or all=true)', 'name');
  if (namespace === '') throw new ApiRequestError('namespace must not be empty when given', 'namespace');
  if (kind === '') throw new ApiRequestError('kind must not be empty when given', 'kind');
  return { name, ...(namespace !== undefined ? { namespace } : {}), ...(kind !== undefined ? { kind } : {}) };
}

function describeSelector(selector: PolicySelector): string {
  if ('all' in selector) return 'all=true (there are no policies)';
  const where = selector.namespace ? ` in namespace ${selector.namespace}` : '';
  return `${selector.kind ? `${selector.kind} ` : ''}${JSON.stringify(selector.name)}${where}`;
}

const TRACE_PROTOCOLS: readonly PolicyTraceProtocol[] = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6', 'ANY'];

function traceQuery(body: unknown): PolicyTraceQuery {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiRequestError('expected a JSON object { "src": { "labels": {...} }, "dst": { "labels": {...} }, "dport": N, "protocol": "TCP" }', '');
  }
  const { src, dst, dport, protocol } = body as { [K in keyof PolicyTraceRequest]?: unknown };
  const rawProtocol = protocol ?? 'TCP';
  const proto = typeof rawProtocol === 'string' ? TRACE_PROTOCOLS.find((p) => p.toLowerCase() === rawProtocol.toLowerCase()) : undefined;
  if (!proto) throw new ApiRequestError(`must be one of ${TRACE_PROTOCOLS.join(', ')}, got ${JSON.stringify(rawProtocol)}`, 'protocol');
  const port = dport ?? 0;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ApiRequestError(`must be an integer from 0 (any) to 65535, got ${JSON.stringify(dport)}`, 'dport');
  }
  return { src: traceLabels(src, 'src'), dst: traceLabels(dst, 'dst'), dport: port, protocol: proto };
}

function traceLabels(peer: unknown, field: string): Labels {
  const labels = (peer as { labels?: unknown } | null)?.labels;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ApiRequestError('expected { "labels": { "source:key": "value", ... } }', `${field}.labels`);
  }
  for (const [key, value] of Object.entries(labels)) {
    if (typeof value !== 'string') throw new ApiRequestError(`label values are strings, got ${JSON.stringify(value)}`, `${field}.labels.${key}`);
    if (!key.includes(':')) throw new ApiRequestError(`label keys carry their source, e.g. "k8s:${key}"`, `${field}.labels.${key}`);
  }
  return labels as Labels;
}
