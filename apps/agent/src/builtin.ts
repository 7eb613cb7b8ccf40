import type { PluginCandidate } from '@cilia/core';
import { coreDatapathPlugin } from '@cilia/datapath';
import { identityAllocatorPlugin } from '@cilia/identity';
import { hostScopeIpamPlugin } from '@cilia/ipam';
import { embeddedKvStorePlugin } from '@cilia/kvstore';
import { nodesPlugin } from '@cilia/nodes';
import { policyIpCachePlugin, policyPlugin } from '@cilia/policy';
import { manifestsPlugin, podEndpointsPlugin } from '@cilia/resources';

/**
 * The agent's base module: default providers of kernel tokens, each from the library that
 * implements it. A configured plugin may take one over by listing its token in `replaces`.
 * More defaults (identity allocator, embedded KvStore, …) join as their libraries land.
 */
export function defaultPlugins(): PluginCandidate[] {
  return [
    hostScopeIpamPlugin,
    embeddedKvStorePlugin,
    identityAllocatorPlugin,
    // Before the datapath in start order (the datapath takes the repository as optional), so
    // endpoints are adopted with their full policy; right after it, the link hands policy the
    // datapath's ipcache for the CIDR identities.
    policyPlugin,
    coreDatapathPlugin,
    policyIpCachePlugin,
    nodesPlugin,
    manifestsPlugin,
    podEndpointsPlugin,
  ].map((definition) => ({
    definition,
    origin: 'default' as const,
  }));
}
