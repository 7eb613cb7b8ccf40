import type { LbMapsReport, ServiceChangeResponse, ServiceDeleteQuery, ServiceInfo, ServiceListResponse } from '@cilia/api-client';
import { ApiRequestError, defineRoute, z, type ApiRoute } from '@cilia/core';
import { parseAddressPort, serviceSchema } from '@cilia/lb';
import type { KubeProxyReplacement } from './runtime.js';

const deleteQuery = z.strictObject({
  frontend: z.string({ error: 'expected the frontend as ADDRESS:PORT[/TCP|UDP]' }).min(1, 'expected the frontend as ADDRESS:PORT[/TCP|UDP]'),
}) satisfies z.ZodType<ServiceDeleteQuery>;

const idParam = (text: string | undefined): number => {
  const id = Number(text);
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw new ApiRequestError(`service id must be an integer from 1 to 65535, got "${text}"`, 'id');
  return id;
};

/**
 * `/v1/services` and `/v1/lb` on the agent socket: the frontends with their ids, owners and
 * backends (GET), services given through the API (PUT by frontend, DELETE), and the LB maps as
 * written. A refused service answers 400 naming the field and changes nothing.
 */
export function serviceRoutes(kpr: () => KubeProxyReplacement): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/services',
      summary: 'every frontend with its id, owner and backends (and their states); refused and skipped Services',
      handler: () => ({ body: kpr().report() satisfies ServiceListResponse }),
    },
    {
      method: 'GET',
      path: '/v1/services/:id',
      summary: 'one frontend by id',
      handler: (req) => {
        const id = idParam(req.params.id);
        const info = kpr().service(id);
        if (!info) throw new ApiRequestError(`no service with id ${id}`, 'id', 404);
        return { body: info satisfies ServiceInfo };
      },
    },
    defineRoute({
      method: 'PUT',
      path: '/v1/services',
      summary: 'add or replace a service of the api owner by its frontend (kept in the state directory across restarts)',
      body: serviceSchema,
      handler: async (req) => {
        const service = req.body as Parameters<KubeProxyReplacement['upsert']>[0];
        const owner = kpr().ownerOf(service.frontend);
        if (owner !== undefined && owner !== 'api') throw new ApiRequestError(`frontend ${service.frontend.address}:${service.frontend.port}/${service.frontend.protocol} is served by ${owner}`, 'frontend', 409);
        await kpr().upsert(service);
        const id = kpr().frontendId(service.frontend);
        if (id === undefined) throw new Error(`service ${service.frontend.address}:${service.frontend.port} was not programmed`);
        return { body: { id, frontend: service.frontend } satisfies ServiceChangeResponse };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/services',
      summary: 'delete a service of the api owner by its frontend',
      query: deleteQuery,
      handler: async (req) => {
        let key: ReturnType<typeof parseAddressPort>;
        try {
          key = parseAddressPort(req.query.frontend, 'frontend');
        } catch (err) {
          throw new ApiRequestError((err as Error).message, 'frontend');
        }
        const owner = kpr().ownerOf(key);
        if (owner !== undefined && owner !== 'api') throw new ApiRequestError(`frontend ${req.query.frontend} is served by ${owner}, not given through the API`, 'frontend', 409);
        const id = kpr().frontendId(key);
        const frontend = kpr().apiService(key)?.frontend;
        if (!frontend || id === undefined || !(await kpr().delete(frontend))) throw new ApiRequestError(`no service of the API has frontend ${req.query.frontend}`, 'frontend', 404);
        return { body: { id, frontend } satisfies ServiceChangeResponse };
      },
    }),
    {
      method: 'GET',
      path: '/v1/lb',
      summary: 'the load balancer maps as written: frontend slots, backends, reverse NAT, Maglev tables',
      handler: () => ({ body: kpr().mapsReport() satisfies LbMapsReport }),
    },
  ];
}
