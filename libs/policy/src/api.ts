import type {
  PolicyDeleteQuery,
  PolicyDeleteResponse,
  PolicyImportRequest,
  PolicyImportResponse,
  PolicyListResponse,
  PolicyTraceProtocol,
  PolicyTraceResponse,
} from '@cilia/api-client';
import { ApiRequestError, defineRoute, z, type ApiRoute, type Labels } from '@cilia/core';
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
    defineRoute({
      method: 'POST',
      path: '/v1/policy',
      summary: 'import policy documents (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy); all or nothing; answers the new revision',
      body: importRequest,
      handler: async (req) => {
        const { documents } = req.body;
        try {
          return { body: { revision: await service().import(documents) } satisfies PolicyImportResponse };
        } catch (err) {
          if ((err as Error)?.name !== 'PolicyValidationError') throw err;
          throw refusal((err as { errors?: readonly PolicyFieldError[] }).errors ?? [], (err as Error).message);
        }
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/policy',
      summary: 'delete the policies a name (and namespace, kind) selects, or all of them; answers the new revision',
      query: deleteQuery,
      handler: async (req) => {
        const selector = deleteSelector(req.query);
        const result = await service().delete(selector);
        if (!result) throw new ApiRequestError(`no policy matches ${describeSelector(selector)}`, 'name' in selector ? 'name' : 'all', 404);
        return { body: result satisfies PolicyDeleteResponse };
      },
    }),
    {
      method: 'GET',
      path: '/v1/policy',
      summary: 'the revision, the enforcement mode and every rule',
      handler: () => {
        const repository = service().repository;
        return { body: { revision: repository.revision(), enforcement: repository.enforcementMode, rules: repository.rules() } satisfies PolicyListResponse };
      },
    },
    defineRoute({
      method: 'POST',
      path: '/v1/policy/trace',
      summary: 'the verdict for traffic from one set of labels to another, and the rules that decide it',
      body: traceRequest,
      handler: (req) => ({ body: service().repository.trace(req.body) satisfies PolicyTraceResponse }),
    }),
  ];
}

const importRequest = z.strictObject(
  { documents: z.array(z.unknown(), { error: 'expected a list of policy documents' }).min(1, 'expected at least one policy document').describe('policy documents, each validated in full before any is applied') },
  { error: 'expected a JSON object { "documents": [...] }' },
) satisfies z.ZodType<PolicyImportRequest>;

const nonEmpty = (what: string) => z.string().min(1, `${what} must not be empty when given`);
const deleteQuery = z.strictObject({
  name: nonEmpty('name').optional(),
  namespace: nonEmpty('namespace').optional(),
  kind: nonEmpty('kind').optional(),
  all: z.literal('true', { error: (i) => `all must be "true", got ${JSON.stringify(i.input)}` }).optional(),
}) satisfies z.ZodType<PolicyDeleteQuery>;

const TRACE_PROTOCOLS: readonly PolicyTraceProtocol[] = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6', 'ANY'];

const traceLabels = z
  .record(z.string(), z.string({ error: (i) => `label values are strings, got ${JSON.stringify(i.input)}` }), { error: 'expected { "labels": { "source:key": "value", ... } }' })
  .superRefine((labels, ctx) => {
    for (const key of Object.keys(labels)) if (!key.includes(':')) ctx.addIssue({ code: 'custom', path: [key], message: `label keys carry their source, e.g. "k8s:${key}"` });
  });
const tracePeer = z.strictObject({ labels: traceLabels }, { error: 'expected { "labels": { "source:key": "value", ... } }' }).transform((peer): Labels => peer.labels);

const traceRequest = z.strictObject(
  {
    src: tracePeer,
    dst: tracePeer,
    dport: z
      .number({ error: (i) => `must be an integer from 0 (any) to 65535, got ${JSON.stringify(i.input)}` })
      .int('must be an integer from 0 (any) to 65535')
      .min(0, 'must be an integer from 0 (any) to 65535')
      .max(65535, 'must be an integer from 0 (any) to 65535')
      .default(0),
    protocol: z
      .string()
      .default('TCP')
      .transform((p, ctx) => {
        const found = TRACE_PROTOCOLS.find((t) => t.toLowerCase() === p.toLowerCase());
        if (!found) ctx.addIssue({ code: 'custom', message: `must be one of ${TRACE_PROTOCOLS.join(', ')}, got ${JSON.stringify(p)}` });
        return found ?? 'ANY';
      }),
  },
  { error: 'expected a JSON object { "src": { "labels": {...} }, "dst": { "labels": {...} }, "dport": N, "protocol": "TCP" }' },
) satisfies z.ZodType<PolicyTraceQuery>;

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
    if (name !== undefined || namespace !== undefined || kind !== undefined) throw new ApiRequestError('all=true deletes every policy; it takes no name, namespace or kind', 'all');
    return { all: true };
  }
  if (!name) throw new ApiRequestError('the name query parameter is required (or all=true)', 'name');
  return { name, ...(namespace !== undefined ? { namespace } : {}), ...(kind !== undefined ? { kind } : {}) };
}

function describeSelector(selector: PolicySelector): string {
  if ('all' in selector) return 'all=true (there are no policies)';
  const where = selector.namespace ? ` in namespace ${selector.namespace}` : '';
  return `${selector.kind ? `${selector.kind} ` : ''}${JSON.stringify(selector.name)}${where}`;
}
