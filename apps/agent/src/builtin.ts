import type { PluginCandidate } from '@cilia/core';
import { coreDatapathPlugin, ipcachePlugin } from '@cilia/datapath';
import { flowPlugin } from '@cilia/flow';
import { identityAllocatorPlugin } from '@cilia/identity';
import { hostScopeIpamPlugin } from '@cilia/ipam';
import { embeddedKvStorePlugin } from '@cilia/kvstore';
import { nodeSyncPlugin, nodesPlugin } from '@cilia/nodes';
import { policyPlugin } from '@cilia/policy';
import { manifestsPlugin, podEndpointsPlugin } from '@cilia/resources';

/**
 * The agent's base module: default providers of kernel tokens, each from the library that
 * implements it. A configured plugin may take one over by listing its token in `replaces`.
 * Start order follows the tokens each needs; the listed order only breaks ties. What the order
 * comes to: the ipcache before policy (its CIDR identities) and the node registry (this node's
 * addresses, for an overlay's constants); policy and the encapsulation before the datapath
 * (endpoints adopted with their full policy and the overlay's MTU); the node sync after it (the
 * ipcache entries it publishes for this node are complete from the first); flow visibility after
 * the datapath that pins its ring buffer.
 */
export function defaultPlugins(): PluginCandidate[] {
  return [
    hostScopeIpamPlugin,
    embeddedKvStorePlugin,
    identityAllocatorPlugin,
    ipcachePlugin,
    policyPlugin,
    nodesPlugin,
    coreDatapathPlugin,
    nodeSyncPlugin,
    manifestsPlugin,
    podEndpointsPlugin,
    flowPlugin,
  ].map((definition) => ({
    definition,
    origin: 'default' as const,
  }));
}
