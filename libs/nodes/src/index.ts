/**
 * @cilia/nodes — node registration and discovery through the KvStore, and the ipcache shared
 * between nodes, both in Cilium's key layout (`nodes/v1/<cluster>/<name>`, `ip/v1/<cluster>/<ip>`).
 */
export { KvNodeRegistry, type KvNodeRegistryOptions } from './registry.js';
export { KvIpCacheSync, type KvIpCacheSyncOptions } from './ipcache-sync.js';
export { RemotePodCidrs, type RemotePodCidrsOptions } from './pod-cidrs.js';
export { EncapsulationDriver, type EncapsulationDriverOptions } from './encapsulation.js';
export { NodeRouteTable, NODE_ROUTE_PROTOCOL, RoutedEncapsulation, type NodeRouteTableOptions } from './routes.js';
export { findUnderlay, tunnelRoutes } from './tunnel.js';
export type { RegisteredNode } from './codec.js';
export type { NodeListItem } from './api.js';
export { nodesPlugin, nodeSyncPlugin, nodesConfig, type NodesConfig } from './plugin.js';
