import type { PluginCandidate } from '@cilia/core';
import { coreDatapathPlugin } from '@cilia/datapath';
import { identityAllocatorPlugin } from '@cilia/identity';
import { hostScopeIpamPlugin } from '@cilia/ipam';
import { embeddedKvStorePlugin } from '@cilia/kvstore';
import { nodesPlugin } from '@cilia/nodes';
import { manifestsPlugin, podEndpointsPlugin } from '@cilia/resources';

/**
 * The agent's base module: default providers of kernel tokens, each from the library that
 * implements it. A configured plugin may take one over by listing its token in `replaces`.
 * More defaults (identity allocator, embedded KvStore, …) join as their libraries land.
 */
export function defaultPlugins(): PluginCandidate[] {
  return [hostScopeIpamPlugin, embeddedKvStorePlugin, identityAllocatorPlugin, coreDatapathPlugin, nodesPlugin, manifestsPlugin, podEndpointsPlugin].map((definition) => ({
    definition,
    origin: 'default' as const,
  }));
}
