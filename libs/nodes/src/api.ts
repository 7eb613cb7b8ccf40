import type { NodeListItem } from '@cilia/api-client';
import type { ApiRoute, IpCache, IpCacheEntry } from '@cilia/core';
import type { KvNodeRegistry } from './registry.js';

/** A node as `GET /v1/nodes` shows it (the API's wire type). */
export type { NodeListItem };

/** `GET /v1/nodes` and `GET /v1/ipcache` on the agent socket. */
export function nodeRoutes(registry: () => KvNodeRegistry, ipcache: () => IpCache): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/nodes',
      summary: 'the nodes of the cluster as the registry knows them, this one marked local',
      handler: () => {
        const self = registry().local()?.name;
        return { body: registry().list().map((n): NodeListItem => ({ ...n, local: n.name === self })) };
      },
    },
    {
      method: 'GET',
      path: '/v1/ipcache',
      summary: 'the ipcache: every prefix with its identity, source and tunnel endpoint',
      handler: () => ({ body: [...ipcache().list()].sort(byPrefix) satisfies IpCacheEntry[] }),
    },
  ];
}

function byPrefix(a: IpCacheEntry, b: IpCacheEntry): number {
  return a.prefix.localeCompare(b.prefix, 'en', { numeric: true });
}
