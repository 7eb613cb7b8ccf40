import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LbMapsReport, ServiceInfo, ServiceListResponse } from '@cilia/api-client';
import { datapathMaps as m } from '@cilia/datapath';
import { openNetlink, setSysctl } from '@cilia/netlink';
import { frontendKey, LoadBalancer, openLbMaps, parseService, ServiceController, type LbFrontendView, type LbMaps } from '@cilia/lb';
import type { AgentConfig, LoadedBpfObject, Logger, NodeInfo, ResourceSource, Service, ServiceFrontend, ServiceManager, Unsubscribe } from '@cilia/core';
import { nodePortRange, type LbConfig } from './config.js';
import { SOCK_PROGRAMS } from './objects.js';

/** The owner of services given through `ServiceManager` and the API. */
const API_OWNER = 'api';

/** Where the services given through the API are kept across restarts (in agent.stateDir). */
export const API_SERVICES_FILE = 'services.json';

const nameOf = <T extends Record<string, number>>(codes: T, code: number): string => Object.entries(codes).find(([, c]) => c === code)?.[0] ?? String(code);

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
    this.#loadApiServices();
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
    await this.#forwardOnNodeDevices();
    this.#socketHooks();
  }

  /**
   * Turns IPv4 forwarding on for the devices holding the NodePort addresses: NodePort,
   * ExternalIP and LoadBalancer connections to a backend on another node, and their replies,
   * leave through the FIB from the device they arrived on, which must forward (as every
   * Kubernetes node does).
   */
  async #forwardOnNodeDevices(): Promise<void> {
    const wanted = new Set(this.nodeAddresses());
    if (wanted.size === 0) return;
    const nl = await openNetlink();
    try {
      const ifindexes = new Set((await nl.listAddresses({ family: 4 })).filter((a) => wanted.has(a.address)).map((a) => a.ifindex));
      for (const link of await nl.listLinks()) {
        if (!ifindexes.has(link.index)) continue;
        await setSysctl(`net.ipv4.conf.${link.name}.forwarding`, 1);
        this.#log.debug({ device: link.name }, 'forwarding on for NodePort traffic to other nodes');
      }
    } finally {
      await nl.close();
    }
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
    const key = frontendKey(service.frontend);
    const before = this.#api.get(key);
    this.#api.set(key, service);
    try {
      controller.setStatic(API_OWNER, [...this.#api.values()]);
    } catch (err) {
      // Refused by the writer: the API's services stay as they were.
      if (before) this.#api.set(key, before);
      else this.#api.delete(key);
      controller.setStatic(API_OWNER, [...this.#api.values()]);
      throw err;
    }
    this.#saveApiServices();
  }

  async delete(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): Promise<boolean> {
    const { controller } = this.#started();
    if (!this.#api.delete(frontendKey(frontend))) return false;
    controller.setStatic(API_OWNER, [...this.#api.values()]);
    this.#saveApiServices();
    return true;
  }

  /** The service given through the API at a frontend, if any. */
  apiService(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): Service | undefined {
    return this.#api.get(frontendKey(frontend));
  }

  /** Who serves a frontend: `Service NAMESPACE/NAME`, `api`, or nobody. */
  ownerOf(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): string | undefined {
    return this.#controller?.ownerOf(frontend);
  }

  /** A frontend's id in the maps. */
  frontendId(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): number | undefined {
    return this.#lb?.frontendId(frontend);
  }

  /** `GET /v1/services`. */
  report(): ServiceListResponse {
    const services = (this.#lb?.frontends() ?? []).map((f) => this.#info(f)).sort((a, b) => a.id - b.id);
    return { services, problems: this.problems(), skipped: Object.fromEntries(this.#controller?.skipped() ?? []) };
  }

  /** `GET /v1/services/:id`. */
  service(id: number): ServiceInfo | undefined {
    const f = this.#lb?.frontend(id);
    return f && this.#info(f);
  }

  #info(f: LbFrontendView): ServiceInfo {
    const s = f.service;
    const owner = s ? (this.ownerOf(s.frontend) ?? 'api') : 'restored';
    const frontend = s?.frontend ?? { address: '', port: 0, protocol: 'TCP', type: 'ClusterIP' };
    return {
      id: f.id,
      frontend,
      owner,
      ...(s
        ? {
            ...(s.namespace ? { namespace: s.namespace } : {}),
            ...(s.name ? { name: s.name } : {}),
            algorithm: s.algorithm,
            sessionAffinitySeconds: s.sessionAffinitySeconds,
            externalTrafficPolicy: s.externalTrafficPolicy,
            internalTrafficPolicy: s.internalTrafficPolicy,
          }
        : {}),
      backends: f.backends.map((b) => ({ ...b.backend, id: b.id, selectable: b.selectable })),
    };
  }

  /** `GET /v1/lb`: what the LB maps hold, read back from them. */
  mapsReport(): LbMapsReport {
    const maps = this.#maps;
    if (!maps) throw new Error('the load balancer has not started');
    const proto = (p: number) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : String(p));
    const services = maps.services
      .lookupBatch()
      .map(([k, v]) => ({
        frontend: `${k.address}:${k.dport}/${proto(k.proto)}`,
        slot: k.backendSlot,
        revNatIndex: v.revNatIndex,
        backendId: v.backendId,
        count: v.count,
        type: k.backendSlot === 0 ? nameOf(m.LbFrontendType, v.type) : '',
        algorithm: k.backendSlot === 0 ? nameOf(m.LbAlgorithmCode, v.algorithm) : '',
        affinityTimeout: v.affinityTimeout,
        localOnly: k.backendSlot === 0 && (v.flags & m.LB_FLAGS.localOnly) !== 0,
      }))
      .sort((a, b) => a.revNatIndex - b.revNatIndex || a.slot - b.slot);
    const backends = maps.backends
      .lookupBatch()
      .map(([id, v]) => ({ id, address: v.address, port: v.port, protocol: proto(v.proto), state: nameOf(m.LbBackendState, v.state) }))
      .sort((a, b) => a.id - b.id);
    const reverseNat = maps.reverseNat
      .lookupBatch()
      .map(([id, v]) => ({ id, address: v.address, port: v.port }))
      .sort((a, b) => a.id - b.id);
    return { services, backends, reverseNat, maglev: [...maps.maglev.keys()].sort((a, b) => a - b) };
  }

  /** Reads the services given through the API before a restart (each validated again). */
  #loadApiServices(): void {
    const file = join(this.#o.agent.stateDir, API_SERVICES_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const list: unknown = JSON.parse(text);
    if (!Array.isArray(list)) throw new Error(`${file}: expected a list of services`);
    list.forEach((item, i) => {
      const parsed = parseService(item);
      if ('problems' in parsed) {
        this.#log.warn({ file, index: i, problems: parsed.problems }, 'a stored API service is refused and left out');
        return;
      }
      this.#api.set(frontendKey(parsed.service.frontend), parsed.service);
    });
  }

  #saveApiServices(): void {
    const file = join(this.#o.agent.stateDir, API_SERVICES_FILE);
    mkdirSync(this.#o.agent.stateDir, { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify([...this.#api.values()], null, 1));
    renameSync(`${file}.tmp`, file);
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
