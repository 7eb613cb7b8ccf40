import { definePlugin, defineToken, HistogramRecorder, LATENCY_BUCKETS_SECONDS, Tokens, type AgentConfig, type IdentityAllocator, type Ipam, type Logger, type PolicyRepository, type Resolver } from '@cilia/core';
import { openNetlink, type NetlinkHandle } from '@cilia/netlink';
import pkg from '../package.json' with { type: 'json' };
import { endpointRoutes } from './api.js';
import { inspectRoutes } from './inspect.js';
import { datapathConfig, type DatapathConfig } from './config.js';
import { LocalIpCache } from './ipcache.js';
import { BpfDatapath } from './loader.js';
import { CoreEndpointManager } from './manager.js';
import { datapathMetricsCollector } from './metrics.js';
import { applyGsoSize, LEGACY_GSO_SIZE, type EncapsulationTraits } from './big-tcp.js';
import { discoverNode, type NodeInfo } from './node.js';
import { PolicyRealizer } from './policy/realizer.js';
import { EndpointStore } from './store.js';

/** The ipcache with what only the datapath uses (attaching its LPM map), for the datapath plugin. */
const IpCacheTable = defineToken<LocalIpCache>('cilia.datapath.IpCacheTable');

/** Everything the plugin builds, once per agent. */
class Runtime {
  readonly ipcache: LocalIpCache;
  readonly datapath: BpfDatapath;
  readonly endpoints: CoreEndpointManager;
  /** Present once policy is enabled (at start, when the agent has a policy repository). */
  policy?: PolicyRealizer;
  readonly policyDelay = new HistogramRecorder(LATENCY_BUCKETS_SECONDS);
  readonly #config: DatapathConfig;
  readonly #logger: Logger;
  readonly #encapsulation?: EncapsulationTraits;
  #host?: Promise<NetlinkHandle>;
  #node?: Promise<NodeInfo>;

  /** `encapsulation`: the overlay's overhead (`mtu: auto` leaves it room on the egress device) and whether it carries BIG TCP. */
  constructor(config: DatapathConfig, agent: AgentConfig, ipcache: LocalIpCache, ipam: Ipam, identity: IdentityAllocator | undefined, logger: Logger, encapsulation?: EncapsulationTraits) {
    this.#config = config;
    this.#encapsulation = encapsulation;
    this.#logger = logger;
    this.ipcache = ipcache;
    this.datapath = new BpfDatapath({ pinRoot: agent.bpfRoot, stateDir: agent.stateDir, cgroupRoot: agent.cgroupRoot, config, ipcache, logger: logger.child({ component: 'datapath' }) });
    this.endpoints = new CoreEndpointManager({
      ipam,
      ipcache: this.ipcache,
      datapath: this.datapath,
      store: new EndpointStore(agent.stateDir),
      logger: logger.child({ component: 'endpoint' }),
      host: () => this.host(),
      node: () => this.node(),
      ...(identity ? { identity } : {}),
      policy: () => this.policy,
    });
  }

  /** BIG TCP settled and policy enabled before any endpoint is adopted. */
  async start(repository: PolicyRepository | undefined): Promise<void> {
    // BIG TCP asked for: settle it (and fail on `true` where it is impossible) before any endpoint.
    if (this.#config.bigTcp !== false) await this.node();
    if (repository) this.enablePolicy(repository);
    await this.endpoints.start();
  }

  /**
   * Loads the policy program into the endpoints' pipelines and starts realizing policy; before
   * endpoints are adopted, so none runs without its policy. Under `always`, an endpoint the
   * map has no state for is dropped by the program itself.
   */
  enablePolicy(repository: PolicyRepository): void {
    const { maxEntries, maxEntriesPerEndpoint } = this.#config.policy;
    const map = this.datapath.enablePolicy({ defaultDeny: repository.enforcementMode === 'always', maxEntries, maxEntriesPerEndpoint });
    this.policy = new PolicyRealizer({ repository, map, logger: this.#logger.child({ component: 'policy-realizer' }), onImplemented: (s) => this.policyDelay.observe(s) });
  }

  host(): Promise<NetlinkHandle> {
    return (this.#host ??= openNetlink());
  }

  /** The node as discovered once, its egress device given the GSO size BIG TCP asks for. */
  node(): Promise<NodeInfo> {
    return (this.#node ??= (async () => {
      const host = await this.host();
      const node = await discoverNode(host, this.#config, this.#encapsulation);
      const log = this.#logger.child({ component: 'datapath' });
      if (node.egress?.link) await applyGsoSize(host, node.egress.link, { size: node.gsoMaxSize ?? LEGACY_GSO_SIZE, egressGro: node.egressGroMaxSize ?? LEGACY_GSO_SIZE }, log);
      if (node.bigTcpOff) log.info({ reason: node.bigTcpOff }, 'BIG TCP (datapath.bigTcp: auto) stays off');
      return node;
    })());
  }

  async close(signal: AbortSignal): Promise<void> {
    this.endpoints.stop();
    this.policy?.close();
    // A create or delete under way finishes first (within the shutdown budget): it needs the netlink handle.
    if (!signal.aborted) await Promise.race([this.endpoints.drain(), new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
    // With no endpoint left there is nothing to keep forwarding: leave the egress device as it was.
    if (this.endpoints.list().length === 0) this.datapath.detachNode();
    this.datapath.close();
    this.ipcache.detach();
    const host = await this.#host?.catch(() => undefined);
    await host?.close();
  }
}

/**
 * The agent's `IpCache`, a default of its base module and a plugin of its own, so that policy,
 * the node registry and the overlays depend on the token rather than on when the datapath
 * starts. It holds entries in memory until the datapath attaches its LPM map.
 */
export const ipcachePlugin = definePlugin({
  name: '@cilia/datapath-ipcache',
  version: pkg.version,
  apiVersion: '^1',
  description: 'The ipcache: IP/CIDR → identity and tunnel endpoint, with per-source precedence',
  provides: [Tokens.IpCache, IpCacheTable],
  register(bind, { logger }) {
    const ipcache = new LocalIpCache(logger.child({ component: 'ipcache' }));
    bind(IpCacheTable).toConstant(ipcache);
    bind(Tokens.IpCache).toConstant(ipcache);
  },
});

/**
 * The core datapath, a default of the agent's base module: endpoints (veth plumbing, the
 * endpoints map, programs on each endpoint's veth), the base programs on the egress device
 * (masquerade) with the ipcache's LPM map, the slots plugins' objects fill, and the
 * `/v1/endpoints` API.
 */
export const coreDatapathPlugin = definePlugin<DatapathConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'datapath',
  description: 'Core datapath: endpoints on veth pairs, base BPF programs and pinned maps, the slots plugins fill, masquerade',
  config: datapathConfig,
  provides: [Tokens.Datapath, Tokens.EndpointManager, Tokens.ApiRoutes, Tokens.HealthReporters, Tokens.MetricsCollectors],
  requires: [Tokens.Ipam, IpCacheTable],
  // Endpoints carry their labels' identity when an allocator is there; `init` (5) otherwise.
  // With a policy repository, endpoints' policy is written before their programs attach.
  // Encapsulation: an overlay plugin's overhead lowers the pod MTU; BIG TCP needs it to carry them.
  optional: [Tokens.IdentityAllocator, Tokens.PolicyRepository, Tokens.Encapsulation],
  register(bind, { config, agent, logger, resolver }) {
    let runtime: Runtime | undefined;
    const get = (r: Resolver) =>
      (runtime ??= new Runtime(config, agent, r.get(IpCacheTable), r.get(Tokens.Ipam), r.getOptional(Tokens.IdentityAllocator), logger, r.getOptional(Tokens.Encapsulation)));
    bind(Tokens.EndpointManager).toFactory((r) => get(r).endpoints);
    bind(Tokens.Datapath).toFactory((r) => get(r).datapath);
    bind(Tokens.ApiRoutes).toFactory((r) => [...endpointRoutes(() => get(r).endpoints, () => get(r).policy), ...inspectRoutes(agent.bpfRoot)]);
    // Names endpoints whose policy cannot be written (their traffic is dropped).
    bind(Tokens.HealthReporters).toFactory((r) => ({ name: pkg.name, problems: () => get(r).policy?.problems() ?? [] }));
    bind(Tokens.MetricsCollectors).toFactory((r) => {
      const rt = get(r);
      return datapathMetricsCollector(pkg.name, {
        pinRoot: agent.bpfRoot,
        endpoints: () => rt.endpoints.list(),
        // One problem line per endpoint failed closed.
        failClosedEndpoints: () => rt.policy?.problems().length ?? 0,
        implementationDelay: () => (rt.policy ? rt.policyDelay : undefined),
      });
    });
    return {
      start: () => get(resolver).start(resolver.getOptional(Tokens.PolicyRepository)),
      // Links, pins and attached programs stay: the datapath keeps forwarding while the agent is away.
      stop: (signal) => runtime?.close(signal),
    };
  },
});
