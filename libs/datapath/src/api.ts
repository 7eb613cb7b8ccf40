import type { EndpointDeleteResponse, EndpointDetail, EndpointGcRequest, EndpointGcResponse, EndpointListQuery } from '@cilia/api-client';
import { ApiRequestError, type ApiRequest, type ApiRoute, type Endpoint, type EndpointCreateRequest, type EndpointManager } from '@cilia/core';
import { EndpointConflictError } from './manager.js';
import type { EndpointPolicyView } from './policy/realizer.js';
import { EndpointRequestError } from './validate.js';

/**
 * The endpoints API on the agent socket (`/v1/endpoints`), as `cilia-cni` and `cilia endpoint`
 * use it. Bad requests answer 400 naming the field, a taken attachment 409, an exhausted pool 507.
 * With policy enabled, one endpoint's answer carries its realized policy (read back from the
 * map; the list leaves it out, it can be large).
 */
export function endpointRoutes(endpoints: () => EndpointManager, policy: () => { describe(id: number): EndpointPolicyView | undefined } | undefined = () => undefined): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/endpoints',
      // The manager validates the body field by field (400 naming the field).
      handler: async (req) => ({ status: 201, body: await guard(() => endpoints().create(req.body as EndpointCreateRequest)) satisfies Endpoint }),
    },
    {
      method: 'GET',
      path: '/v1/endpoints',
      handler: (req) => {
        const { containerId, interfaceName }: EndpointListQuery = req.query;
        const body: Endpoint[] = endpoints()
          .list()
          .filter((e) => (containerId === undefined || e.containerId === containerId) && (interfaceName === undefined || e.interfaceName === interfaceName));
        return { body };
      },
    },
    {
      method: 'GET',
      path: '/v1/endpoints/:id',
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
      handler: async (req) => {
        const id = endpointId(req);
        if (!(await endpoints().delete(id))) throw new ApiRequestError(`endpoint ${id} not found`, 'id', 404);
        return { body: { deleted: true } satisfies EndpointDeleteResponse };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/endpoints',
      handler: async (req) => {
        const { containerId, interfaceName }: EndpointListQuery = req.query;
        if (!containerId) throw new ApiRequestError('the containerId query parameter is required', 'containerId');
        const endpoint = endpoints().findByContainer(containerId, interfaceName ?? 'eth0');
        const deleted = endpoint ? await endpoints().delete(endpoint.id) : false;
        return { body: { deleted } satisfies EndpointDeleteResponse };
      },
    },
    {
      method: 'POST',
      path: '/v1/endpoints/gc',
      handler: async (req) => {
        const valid = gcValid(req.body);
        const manager = endpoints();
        const doomed = manager.list().filter((e): e is Endpoint & { containerId: string } => e.containerId !== undefined && !valid.has(`${e.containerId}\0${e.interfaceName}`));
        const deleted: number[] = [];
        for (const e of doomed) if (await manager.delete(e.id)) deleted.push(e.id);
        return { body: { deleted } satisfies EndpointGcResponse };
      },
    },
  ];
}

function endpointId(req: ApiRequest): number {
  const raw = req.params.id ?? '';
  if (!/^\d{1,9}$/.test(raw)) throw new ApiRequestError(`endpoint id must be a positive integer, got ${JSON.stringify(raw)}`, 'id');
  return Number(raw);
}

function gcValid(body: unknown): Set<string> {
  // The shape of EndpointGcRequest, each field checked before use.
  const { valid } = (body ?? {}) as { [K in keyof EndpointGcRequest]?: unknown };
  if (typeof body !== 'object' || body === null || !Array.isArray(valid)) {
    throw new ApiRequestError('expected a list of { containerId, interfaceName }', 'valid');
  }
  const keys = new Set<string>();
  valid.forEach((v: unknown, i) => {
    const item = v as { containerId?: unknown; interfaceName?: unknown };
    if (typeof item !== 'object' || item === null || typeof item.containerId !== 'string' || item.containerId === '') {
      throw new ApiRequestError('expected a non-empty string', `valid[${i}].containerId`);
    }
    if (item.interfaceName !== undefined && typeof item.interfaceName !== 'string') throw new ApiRequestError('expected a string', `valid[${i}].interfaceName`);
    keys.add(`${item.containerId}\0${(item.interfaceName as string | undefined) ?? 'eth0'}`);
  });
  return keys;
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
