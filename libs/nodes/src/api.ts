import type { ApiRoute, IpCache, IpCacheEntry } from '@cilia/core';
import type { RegisteredNode } from './codec.js';
import type { KvNodeRegistry } from './registry.js';

/** A node as `GET /v1/nodes` shows it. */
export interface NodeListItem extends RegisteredNode {
  /** Whether it is the node of the agent answering. */
  readonly local: boolean;
}

/** `GET /v1/nodes` and `GET /v1/ipcache` on the agent socket. */
export function nodeRoutes(registry: () => KvNodeRegistry, ipcache: () => IpCache): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/nodes',
      handler: () => {
        const self = registry().local()?.name;
        return { body: registry().list().map((n): NodeListItem => ({ ...n, local: n.name === self })) };
      },
    },
    {
      method: 'GET',
      path: '/v1/ipcache',
      handler: () => ({ body: [...ipcache().list()].sort(byPrefix) satisfies IpCacheEntry[] }),
    },
  ];
}

function byPrefix(a: IpCacheEntry, b: IpCacheEntry): number {
  return a.prefix.localeCompare(b.prefix, 'en', { numeric: true });
}
