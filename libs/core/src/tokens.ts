import { defineToken } from './token.js';
import type { ApiRoute, HealthReporter, WebPage } from './api.js';
import type { AgentConfig } from './services/config.js';
import type { Datapath } from './services/datapath.js';
import type { Encapsulation } from './services/encapsulation.js';
import type { EndpointManager } from './services/endpoint.js';
import type { FlowSource } from './services/flow.js';
import type { IdentityAllocator } from './services/identity.js';
import type { IpCache } from './services/ipcache.js';
import type { Ipam } from './services/ipam.js';
import type { KvStore } from './services/kvstore.js';
import type { LocalNode, NodeRegistry } from './services/nodes.js';
import type { L7Parser, L7Proxy } from './services/l7proxy.js';
import type { Lifecycle } from './services/lifecycle.js';
import type { Logger } from './services/logger.js';
import type { MetricsCollector } from './services/metrics.js';
import type { PolicyRepository } from './services/policy.js';
import type { ResourceSource } from './services/resources.js';
import type { ServiceManager } from './services/service.js';

/**
 * The kernel's tokens. The agent itself provides `Logger`, `AgentConfigToken` and
 * `LifecycleToken`; every other token is provided by the agent's base module or a plugin.
 */
export const Tokens = {
  Logger: defineToken<Logger>('cilia.Logger'),
  AgentConfig: defineToken<AgentConfig>('cilia.AgentConfig'),
  Lifecycle: defineToken<Lifecycle>('cilia.Lifecycle'),
  Ipam: defineToken<Ipam>('cilia.Ipam'),
  IdentityAllocator: defineToken<IdentityAllocator>('cilia.IdentityAllocator'),
  IpCache: defineToken<IpCache>('cilia.IpCache'),
  PolicyRepository: defineToken<PolicyRepository>('cilia.PolicyRepository'),
  ServiceManager: defineToken<ServiceManager>('cilia.ServiceManager'),
  Encapsulation: defineToken<Encapsulation>('cilia.Encapsulation'),
  L7Proxy: defineToken<L7Proxy>('cilia.L7Proxy'),
  /** Extension point: every L7 protocol parser the proxy can use. */
  L7Parser: defineToken<L7Parser>('cilia.L7Parser', { multiple: true }),
  KvStore: defineToken<KvStore>('cilia.KvStore'),
  /** The cluster's nodes, as registered in the KvStore. */
  NodeRegistry: defineToken<NodeRegistry>('cilia.NodeRegistry'),
  /** This node's own addresses, known before it registers. */
  LocalNode: defineToken<LocalNode>('cilia.LocalNode'),
  ResourceSource: defineToken<ResourceSource>('cilia.ResourceSource'),
  EndpointManager: defineToken<EndpointManager>('cilia.EndpointManager'),
  Datapath: defineToken<Datapath>('cilia.Datapath'),
  FlowSource: defineToken<FlowSource>('cilia.FlowSource'),
  /** Extension point: routes plugins add to the agent's API socket. */
  ApiRoutes: defineToken<readonly ApiRoute[]>('cilia.ApiRoutes', { multiple: true }),
  /** Extension point: components whose problems `cilia status` shows. */
  HealthReporters: defineToken<HealthReporter>('cilia.HealthReporters', { multiple: true }),
  /** Extension point: metric families the agent serves on `/metrics`, collected on every scrape. */
  MetricsCollectors: defineToken<MetricsCollector>('cilia.MetricsCollectors', { multiple: true }),
  /** Extension point: pages the agent serves on its HTTP address beside `/metrics` (the service map). */
  WebPages: defineToken<WebPage>('cilia.WebPages', { multiple: true }),
} as const;
