import type { EndpointDeleteResponse, EndpointDetail, EndpointGcResponse, EndpointListQuery } from '@cilia/api-client';
import { ApiRequestError, defineRoute, z, type ApiRequest, type ApiRoute, type Endpoint, type EndpointManager } from '@cilia/core';
import { EndpointConflictError } from './manager.js';
import type { EndpointPolicyView } from './policy/realizer.js';
import { endpointCreateRequestSchema, EndpointRequestError } from './validate.js';

const attachmentQuery = z.strictObject({
  containerId: z.string().min(1).optional().describe('only the endpoint of this CNI container id'),
  interfaceName: z.string().min(1).optional().describe("the container's interface (with containerId)"),
});

const gcRequest = z.strictObject({
  valid: z
    .array(z.strictObject({ containerId: z.string().min(1, 'expected a non-empty string'), interfaceName: z.string().default('eth0') }), { error: 'expected a list of { containerId, interfaceName }' })
    .describe('every CNI attachment the runtime still has; CNI endpoints not listed are deleted'),
});

/**
 * The endpoints API on the agent socket (`/v1/endpoints`), as `cilia-cni` and `cilia endpoint`
 * use it. Bad requests answer 400 naming the field, a taken attachment 409, an exhausted pool 507.
 * With policy enabled, one endpoint's answer carries its realized policy (read back from the
 * map; the list leaves it out, it can be large).
 */
export function endpointRoutes(endpoints: () => EndpointManager, policy: () => { describe(id: number): EndpointPolicyView | undefined } | undefined = () => undefined): ApiRoute[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/endpoints',
      summary: 'create an endpoint: IP, network namespace, veth, routes, identity, policy, programs (201; 409 for a taken attachment, 507 for an exhausted pool)',
      body: endpointCreateRequestSchema,
      handler: async (req) => ({ status: 201, body: await guard(() => endpoints().create(req.body)) satisfies Endpoint }),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/endpoints',
      summary: "every endpoint of this agent (or one CNI attachment's)",
      query: attachmentQuery,
      handler: (req) => {
        const { containerId, interfaceName }: EndpointListQuery = req.query;
        const body: Endpoint[] = endpoints()
          .list()
          .filter((e) => (containerId === undefined || e.containerId === containerId) && (interfaceName === undefined || e.interfaceName === interfaceName));
        return { body };
      },
    }),
    {
      method: 'GET',
      path: '/v1/endpoints/:id',
      summary: 'one endpoint, with its realized policy when policy is enabled',
      handler: (req) => {
        const id = endpointId(req);
        const endpoint = endpoints().get(id);
        if (!endpoint) throw new ApiRequestError(`endpoint ${id} not found`, 'id', 404);
        const realized = policy()?.describe(id);
        const body: EndpointDetail = realized ? { ...endpoint, policy: realized } : endpoint;
        return { body };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/endpoints/:id',
      summary: 'delete an endpoint and everything made for it',
      handler: async (req) => {
        const id = endpointId(req);
        if (!(await endpoints().delete(id))) throw new ApiRequestError(`endpoint ${id} not found`, 'id', 404);
        return { body: { deleted: true } satisfies EndpointDeleteResponse };
      },
    },
    defineRoute({
      method: 'DELETE',
      path: '/v1/endpoints',
      summary: "delete a CNI attachment's endpoint (deleted: false when there is none)",
      query: attachmentQuery.required({ containerId: true }),
      handler: async (req) => {
        const { containerId, interfaceName } = req.query;
        const endpoint = endpoints().findByContainer(containerId, interfaceName ?? 'eth0');
        const deleted = endpoint ? await endpoints().delete(endpoint.id) : false;
        return { body: { deleted } satisfies EndpointDeleteResponse };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/endpoints/gc',
      summary: 'CNI GC: delete the CNI endpoints whose attachment is not in the list',
      body: gcRequest,
      handler: async (req) => {
        const valid = new Set(req.body.valid.map((v) => `${v.containerId}\0${v.interfaceName}`));
        const manager = endpoints();
        const doomed = manager.list().filter((e): e is Endpoint & { containerId: string } => e.containerId !== undefined && !valid.has(`${e.containerId}\0${e.interfaceName}`));
        const deleted: number[] = [];
        for (const e of doomed) if (await manager.delete(e.id)) deleted.push(e.id);
        return { body: { deleted } satisfies EndpointGcResponse };
      },
    }),
  ];
}

function endpointId(req: ApiRequest): number {
  const raw = req.params.id ?? '';
  if (!/^\d{1,9}$/.test(raw)) throw new ApiRequestError(`endpoint id must be a positive integer, got ${JSON.stringify(raw)}`, 'id');
  return Number(raw);
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EndpointRequestError) throw new ApiRequestError(err.reason, err.path);
    if (err instanceof EndpointConflictError) throw new ApiRequestError(err.message, err.path, 409);
    if (err instanceof Error && err.name === 'IpamExhaustedError') throw new ApiRequestError(`cannot allocate an address: ${err.message}`, undefined, 507);
    throw err;
  }
}
