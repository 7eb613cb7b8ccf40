import { ApiRequestError, type ApiRoute, type IdentityAllocator } from '@cilia/core';

/** `GET /v1/identities` and `GET /v1/identities/:id` on the agent socket. */
export function identityRoutes(allocator: () => IdentityAllocator): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/identities', summary: 'every identity this node knows: reserved, cluster-wide and local (CIDR)', handler: () => ({ body: allocator().list() }) },
    {
      method: 'GET',
      path: '/v1/identities/:id',
      summary: 'one identity and its labels',
      handler: (req) => {
        const raw = req.params.id ?? '';
        if (!/^\d{1,10}$/.test(raw)) throw new ApiRequestError(`identity must be a non-negative integer, got ${JSON.stringify(raw)}`, 'id');
        const identity = allocator().lookup(Number(raw));
        if (!identity) throw new ApiRequestError(`identity ${raw} not found`, 'id', 404);
        return { body: identity };
      },
    },
  ];
}
