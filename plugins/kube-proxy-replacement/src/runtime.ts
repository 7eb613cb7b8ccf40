import { datapathMaps as m } from '@cilia/datapath';
import { frontendKey, LoadBalancer, openLbMaps, ServiceController, type LbMaps } from '@cilia/lb';
import type { AgentConfig, LoadedBpfObject, Logger, NodeInfo, ResourceSource, Service, ServiceFrontend, ServiceManager, Unsubscribe } from '@cilia/core';
import { nodePortRange, type LbConfig } from './config.js';
import { SOCK_PROGRAMS } from './objects.js';

/** The owner of services given through `ServiceManager` and the API. */
const API_OWNER = 'api';

/** How often expired flow entries are deleted (conntrack's GC period). */
const GC_INTERVAL_MS = 30_000;

export interface KubeProxyReplacementOptions {
  readonly config: LbConfig;
  readonly agent: AgentConfig;
  readonly logger: Logger;
  /** sock.o as the agent loaded it. */
  readonly socketObject: () => LoadedBpfObject;
  readonly node: () => NodeInfo;
  readonly resources: () => ResourceSource;
}

/**
 * The plugin's running parts, built at start once the agent has loaded its objects (which pin
 * the LB maps): the LB maps' writer, the controller that keeps it in step with Services and
 * EndpointSlices, and the garbage collection of expired flows. Stopping lets go of handles
 * only: the maps and programs stay and keep balancing while the agent is away.
 */
export class KubeProxyReplacement implements ServiceManager {
  readonly #o: KubeProxyReplacementOptions;
  readonly #log: Logger;
  #maps?: LbMaps;
  #lb?: LoadBalancer;
  #controller?: ServiceController;
  #unsubscribe?: Unsubscribe;
  #gc?: NodeJS.Timeout;
  readonly #api = new Map<string, Service>();

  constructor(options: KubeProxyReplacementOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** The node addresses NodePorts are served on. */
  nodeAddresses(): string[] {
    if (this.#o.config.nodePort.addresses.length > 0) return [...this.#o.config.nodePort.addresses];
    const ipv4 = this.#o.node().ipv4;
    return ipv4 ? [ipv4] : [];
  }

  async start(syncTimeoutMs = 10_000): Promise<void> {
    const { config, agent } = this.#o;
    this.#maps = openLbMaps(agent.bpfRoot);
    this.#lb = new LoadBalancer({ maps: this.#maps, nodeName: agent.nodeName, maglev: config.maglev, logger: this.#log.child({ component: 'lb-maps' }) });
    const controller = new ServiceController({
      sink: this.#lb,
      logger: this.#log.child({ component: 'services' }),
      options: { nodeAddresses: this.nodeAddresses(), nodePortRange: nodePortRange(config), serviceProxyName: config.serviceProxyName, defaultAlgorithm: config.algorithm },
    });
    this.#controller = controller;
    controller.setStatic(API_OWNER, [...this.#api.values()]);
    const synced = new Promise<void>((resolve) => {
      this.#unsubscribe = this.#o.resources().subscribe(['Service', 'EndpointSlice'], (event) => {
        try {
          controller.handle(event);
        } catch (err) {
          this.#log.error({ err, event: event.type }, 'programming services failed');
        }
        if (event.type === 'synced') resolve();
      });
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), syncTimeoutMs).unref());
    if ((await Promise.race([synced, timeout])) === 'timeout') this.#log.warn({ syncTimeoutMs }, 'the resource source has not listed its services yet; they are programmed once it has');
    this.#gc = setInterval(() => this.#collect(), GC_INTERVAL_MS).unref();
    this.#socketHooks();
  }

  /** Attaches the socket programs at agent.cgroupRoot (after the maps are programmed), or detaches them when the socket LB is off. */
  #socketHooks(): void {
    const sock = this.#o.socketObject();
    if (!sock.attachCgroup || !sock.detachCgroup) throw new Error('this datapath cannot attach cgroup socket hooks (LoadedBpfObject.attachCgroup): turn lb.socketLB.enabled off');
    for (const [program, hook] of Object.entries(SOCK_PROGRAMS)) {
      if (this.#o.config.socketLB.enabled) sock.attachCgroup(program, { hook });
      else if (sock.detachCgroup(program, { hook })) this.#log.info({ program, hook }, 'socket LB off: hook detached');
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    if (this.#gc) clearInterval(this.#gc);
    this.#maps?.close();
    this.#maps = undefined;
    this.#lb = undefined;
  }

  /** Problems for `cilia status`. */
  problems(): string[] {
    return this.#controller?.problems() ?? [];
  }

  /** Adds or replaces a service of the `api` owner (beside the Services of the resource source). */
  async upsert(service: Service): Promise<void> {
    const { controller } = this.#started();
    const owner = controller.ownerOf(service.frontend);
    if (owner !== undefined && owner !== API_OWNER) throw new Error(`frontend ${frontendKey(service.frontend)} is served by ${owner}`);
    this.#api.set(frontendKey(service.frontend), service);
    controller.setStatic(API_OWNER, [...this.#api.values()]);
  }

  async delete(frontend: ServiceFrontend): Promise<boolean> {
    const { controller } = this.#started();
    if (!this.#api.delete(frontendKey(frontend))) return false;
    controller.setStatic(API_OWNER, [...this.#api.values()]);
    return true;
  }

  list(): readonly Service[] {
    return this.#lb?.list() ?? [];
  }

  #started(): { lb: LoadBalancer; controller: ServiceController } {
    if (!this.#lb || !this.#controller) throw new Error('the load balancer has not started');
    return { lb: this.#lb, controller: this.#controller };
  }

  #collect(): void {
    if (!this.#maps) return;
    try {
      const flows = m.gcExpired(this.#maps.flows);
      if (flows > 0) this.#log.debug({ flows }, 'expired load-balancer flows deleted');
    } catch (err) {
      this.#log.warn({ err }, 'load-balancer flow GC failed');
    }
  }
}
