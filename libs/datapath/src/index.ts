/**
 * @cilia/datapath — the core datapath: endpoints on veth pairs (the `EndpointManager`), the
 * base BPF objects with their pinned maps (`Datapath`), the `IpCache`, and the
 * `/v1/endpoints` API, bundled as the agent's default plugin {@link coreDatapathPlugin}.
 */
export { coreDatapathPlugin, ipcachePlugin } from './plugin.js';
export { datapathConfig, type DatapathConfig } from './config.js';
export { CoreEndpointManager, EndpointConflictError, PLACEHOLDER_IDENTITY } from './manager.js';
export { EndpointRequestError } from './validate.js';
export { LocalIpCache } from './ipcache.js';
export { BpfDatapath } from './loader.js';
export { agentNetnsName, hostInterfaceName } from './naming.js';
/** Codecs and names of the pinned datapath maps and records (bpf/include/cilia/). */
export * as datapathMaps from './maps/index.js';
export { PolicyRealizer, type EndpointPolicyView, type PolicyTarget } from './policy/realizer.js';
export { cleanupNode, type CleanupItem, type CleanupOptions, type CleanupReport } from './cleanup.js';
