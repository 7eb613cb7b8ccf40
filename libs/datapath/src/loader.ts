import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachTc, BpfMap, BpfObject, codec, detachTc, probeFeatures, ProgramArray, queryTc, type ConstantValue } from '@cilia/bpf';
import { ReservedIdentity, type AttachPoint, type BpfFeatures, type Cidr, type Datapath, type IpCacheEntry, type LoadedBpfObject, type Logger, type ObjectInstall, type ProgramPlacement, type SlotAssignment } from '@cilia/core';
import { EndpointMaps } from './abi.js';
import type { DatapathEndpoint, EndpointDatapath } from './backend.js';
import { CtKey, CtValue, gcExpired } from './maps/conntrack.js';
import { ENDPOINT_F_HOST } from './maps/endpoints.js';
import { MonitorAggregation } from './maps/events.js';
import { SnatKey, SnatValue } from './maps/nat.js';
import { PolicyEndpointValue, PolicyMapKey, PolicyMapValue } from './maps/policy.js';
import { PolicyMap } from './policy/map.js';
import { BASE_PROGRAMS, slotIndex, type TcAttachPoint } from './maps/slots.js';
import { MapName } from './maps/index.js';
import { applyMapSizes } from './map-sizes.js';
import type { DatapathConfig } from './config.js';
import type { IpCacheMapWriter, LocalIpCache } from './ipcache.js';
import type { NodeInfo } from './node.js';
import { parsePrefix } from './prefix.js';
import { PluginObjects } from './plugin-objects.js';

/** Where the base objects are: `dist/bpf` of this package (from src/ in tests and from dist/ when built). */
const OBJECT_DIR = new URL('../dist/bpf/', import.meta.url);

const SLOT_TABLE = 'cilia_tc_slots';
/** How often expired conntrack and SNAT entries are deleted. */
const GC_INTERVAL_MS = 30_000;

/** Options of {@link BpfDatapath.enablePolicy}. */
export interface PolicyDatapathOptions {
  /** Drop traffic of endpoints whose policy is not written yet (enforcement `always`). */
  readonly defaultDeny: boolean;
  /** Size of `cilia_policy` when it is created (default 262144); a pinned map keeps its size. */
  readonly maxEntries?: number;
  /** Prefixes one endpoint may have before it fails closed (default 16384). */
  readonly maxEntriesPerEndpoint?: number;
}

/** Options of {@link BpfDatapath}. */
export interface BpfDatapathOptions {
  readonly pinRoot: string;
  readonly config: DatapathConfig;
  readonly ipcache: LocalIpCache;
  readonly logger: Logger;
  /** Directory of the base objects; default this package's `dist/bpf/`. */
  readonly objectDir?: URL;
  /** Where the record of which plugin fills which slot persists; none: in memory only. */
  readonly stateDir?: string;
  /** The cgroup v2 directory plugins' socket hooks attach to by default (`agent.cgroupRoot`). */
  readonly cgroupRoot?: string;
}

/**
 * Loads the base objects (`lxc.o` once, shared by every endpoint; `host.o` for the egress
 * device), with their maps pinned by name under the agent's pin root — reused, never
 * recreated, when they are there already — and attaches programs with tc's atomic in-place
 * replacement, so a restarted agent swaps programs under live traffic without a gap.
 */
export class BpfDatapath implements Datapath, EndpointDatapath {
  readonly pinRoot: string;
  readonly #opts: BpfDatapathOptions;
  readonly #log: Logger;
  #lxc?: BpfObject;
  #host?: BpfObject;
  #maps?: EndpointMaps;
  #slots?: ProgramArray;
  readonly #pluginObjects: PluginObjects;
  #node?: NodeInfo;
  #gcTimer?: NodeJS.Timeout;
  #policy?: { readonly obj: BpfObject; readonly writer: PolicyMap };

  constructor(options: BpfDatapathOptions) {
    this.pinRoot = options.pinRoot;
    this.#opts = options;
    this.#log = options.logger;
    this.#pluginObjects = new PluginObjects({
      pinRoot: options.pinRoot,
      logger: options.logger.child({ component: 'plugin-objects' }),
      ...(options.stateDir ? { stateDir: options.stateDir } : {}),
      ...(options.cgroupRoot ? { cgroupRoot: options.cgroupRoot } : {}),
      mapSizes: this.#mapSizes(),
    });
  }

  #mapSizes(): Record<string, number> {
    return { [MapName.conntrack]: this.#opts.config.conntrack.maxEntries };
  }

  async features(): Promise<BpfFeatures> {
    return probeFeatures(this.pinRoot);
  }

  async ensureNode(node: NodeInfo): Promise<void> {
    if (this.#lxc) return;
    const started = performance.now();
    const constants = this.#nodeConstants(node);
    const egress = node.egress;
    let lxc: BpfObject | undefined;
    let host: BpfObject | undefined;
    try {
      lxc = await this.#load('lxc.o', constants);
      const slots = lxc.programArray(SLOT_TABLE);
      installResume(slots, lxc, BASE_PROGRAMS.lxc);
      if (egress) {
        host = await this.#load('host.o', constants);
        installResume(slots, host, BASE_PROGRAMS.host);
        for (const p of Object.values(BASE_PROGRAMS.host)) attachTc(host.program(p.program), { interface: egress.ifindex, direction: p.tc });
      }
      // Only a complete load counts: a failure leaves nothing half-set for the next attempt.
      this.#slots = slots;
    } catch (err) {
      lxc?.close();
      host?.close();
      throw err;
    }
    this.#lxc = lxc;
    this.#host = host;
    this.#node = node;
    this.#maps = new EndpointMaps(lxc);
    if (!constants.SNAT_IPV4) {
      this.#log.warn({ egress: egress?.name, masquerade: this.#opts.config.masquerade }, 'no masquerading: it is off, or there is no egress device with an IPv4 address');
    }
    this.#opts.ipcache.attach(new LpmWriter(this.#maps));
    await this.#opts.ipcache.apply({
      upserts: [
        { prefix: '0.0.0.0/0', identity: ReservedIdentity.world, source: 'generated' },
        ...node.hostIPv4.map((ip) => ({ prefix: `${ip}/32`, identity: ReservedIdentity.host, source: 'generated' as const })),
      ],
      deletes: [],
    });
    this.#gcTimer = setInterval(() => this.collectGarbage(), GC_INTERVAL_MS).unref();
    this.#log.info({ ms: Math.round(performance.now() - started), egress: egress?.name, masquerade: !!constants.SNAT_IPV4, pinRoot: this.pinRoot }, 'base datapath loaded');
  }

  async attachEndpoint(ep: DatapathEndpoint): Promise<void> {
    const maps = this.#requireMaps();
    maps.endpoints.update(ep.ipv4, {
      ifindex: ep.podIfindex,
      hostIfindex: ep.hostIfindex,
      identity: ep.identity,
      endpointId: ep.id,
      flags: 0,
      mac: ep.podMac,
      hostMac: ep.hostMac,
    });
    // Same handle and priority as any previous attachment: tc replaces it atomically.
    for (const p of Object.values(BASE_PROGRAMS.lxc)) attachTc(this.#lxc!.program(p.program), { interface: ep.hostIfindex, direction: p.tc });
  }

  async detachEndpoint(ep: DatapathEndpoint): Promise<void> {
    this.#requireMaps().endpoints.delete(ep.ipv4);
  }

  async pruneEndpoints(valid: readonly DatapathEndpoint[]): Promise<number> {
    const maps = this.#requireMaps();
    const keep = new Set(valid.map((e) => e.ipv4));
    let pruned = 0;
    for (const [key, value] of maps.endpoints.entries()) {
      if (value.flags & ENDPOINT_F_HOST) continue;
      if (!keep.has(key) && maps.endpoints.delete(key)) pruned++;
    }
    return pruned;
  }

  async installObjects(owner: string, objects: readonly ObjectInstall[]): Promise<LoadedBpfObject[]> {
    return this.#pluginObjects.install(owner, objects);
  }

  async releaseSlots(owners: readonly string[]): Promise<SlotAssignment[]> {
    return this.#pluginObjects.release(owners);
  }

  slots(): SlotAssignment[] {
    return this.#pluginObjects.assignments();
  }

  closeObjects(owner: string): void {
    this.#pluginObjects.closeObjects(owner);
  }

  /**
   * Loads `policy.o` against the pin root (adopting the pinned `cilia_policy` and
   * `cilia_policy_endpoints` with their contents), puts `cil_policy` into the policy slot of
   * from-container and to-container, and returns the map writer. Once per datapath: later calls
   * return the same writer.
   */
  enablePolicy(options: PolicyDatapathOptions): PolicyMap {
    if (this.#policy) return this.#policy.writer;
    const path = fileURLToPath(new URL('policy.o', this.#opts.objectDir ?? OBJECT_DIR));
    let obj: BpfObject;
    try {
      obj = BpfObject.open(path, { pinRoot: this.pinRoot, constants: { POLICY_DEFAULT_DENY: options.defaultDeny ? 1 : 0 } });
    } catch (err) {
      throw new Error(`cannot open the policy datapath object ${path} (is @cilia/datapath built? npx nx run @cilia/datapath:build): ${(err as Error).message}`);
    }
    try {
      applyMapSizes(obj, this.#mapSizes());
      const size = this.#policyMapSize(options.maxEntries);
      if (size !== undefined) obj.setMaxEntries('cilia_policy', size);
      obj.load();
      // Adopt what the maps hold before the program can act on it.
      const writer = new PolicyMap({
        policy: obj.map('cilia_policy', { key: PolicyMapKey, value: PolicyMapValue }),
        endpoints: obj.map('cilia_policy_endpoints', { key: codec.u32, value: PolicyEndpointValue }),
        maxEntriesPerEndpoint: options.maxEntriesPerEndpoint,
        defaultDeny: options.defaultDeny,
        logger: this.#log.child({ component: 'policy-map' }),
      });
      const slots = obj.programArray(SLOT_TABLE);
      for (const ap of ['from-container', 'to-container'] as const) slots.set(slotIndex(ap, 'policy'), obj.program('cil_policy'));
      this.#policy = { obj, writer };
    } catch (err) {
      obj.close();
      throw err;
    }
    this.#log.info({ defaultDeny: options.defaultDeny, maxEntries: options.maxEntries }, 'policy datapath enabled');
    return this.#policy.writer;
  }

  /**
   * The size to create `cilia_policy` with. A pinned map is reused only with its own size, so a
   * changed setting waits for the map to be recreated (a node reboot) rather than failing the load.
   */
  #policyMapSize(wanted: number | undefined): number | undefined {
    if (wanted !== undefined && (!Number.isInteger(wanted) || wanted < 1)) throw new RangeError(`maxEntries: must be a positive integer, got ${wanted}`);
    const pin = join(this.pinRoot, 'cilia_policy');
    if (!existsSync(pin)) return wanted;
    const pinned = BpfMap.openPinned(pin);
    try {
      const size = pinned.info.maxEntries;
      if (wanted !== undefined && wanted !== size) this.#log.warn({ pinned: size, configured: wanted }, 'cilia_policy is pinned with another size: keeping it (and its entries)');
      return size;
    } finally {
      pinned.close();
    }
  }

  async clearSlot(attach: AttachPoint, slot: ProgramPlacement['slot']): Promise<void> {
    this.#pluginObjects.clear(attach, slot);
  }

  /** Deletes expired `cilia_ct` and `cilia_snat` entries; returns how many went. */
  collectGarbage(): number {
    let deleted = 0;
    const now = process.hrtime.bigint();
    for (const [name, key, value] of [['cilia_ct', CtKey, CtValue], ['cilia_snat', SnatKey, SnatValue]] as const) {
      // cilia_snat is there once host.o has loaded (a node with an egress device).
      if (!existsSync(join(this.pinRoot, name))) continue;
      let map: BpfMap<unknown, { expiresNs: bigint }> | undefined;
      try {
        map = BpfMap.openPinned(join(this.pinRoot, name), { key, value } as never);
        deleted += gcExpired(map, now);
      } catch (err) {
        this.#log.warn({ map: name, err }, 'conntrack garbage collection failed');
      } finally {
        map?.close();
      }
    }
    if (deleted > 0) this.#log.debug({ deleted }, 'expired conntrack/NAT entries deleted');
    return deleted;
  }

  /** Closes the objects; pins, map contents and tc attachments stay. */
  close(): void {
    clearInterval(this.#gcTimer);
    for (const obj of [this.#lxc, this.#host, this.#policy?.obj]) obj?.close();
    this.#pluginObjects.close();
    this.#lxc = this.#host = this.#maps = this.#slots = this.#policy = undefined;
  }

  /** Removes the programs this agent attached to the egress device (when no endpoint is left). */
  detachNode(): void {
    const egress = this.#node?.egress;
    if (!egress || !this.#host) return;
    for (const p of Object.values(BASE_PROGRAMS.host)) {
      const where = { interface: egress.ifindex, direction: p.tc };
      try {
        if (queryTc(where) === this.#host.program(p.program).id) detachTc(where);
      } catch (err) {
        this.#log.warn({ device: egress.name, err }, 'could not detach the egress device programs');
      }
    }
    this.#log.info({ device: egress.name }, 'egress device programs detached (no endpoints left)');
  }

  async #load(file: string, constants: Record<string, ConstantValue>): Promise<BpfObject> {
    const path = fileURLToPath(new URL(file, this.#opts.objectDir ?? OBJECT_DIR));
    let obj: BpfObject;
    try {
      obj = BpfObject.open(path, { pinRoot: this.pinRoot });
    } catch (err) {
      throw new Error(`cannot open the base datapath object ${path} (is @cilia/datapath built? npx nx run @cilia/datapath:build): ${(err as Error).message}`);
    }
    const known = new Set(obj.globals().map((g) => g.name));
    for (const [name, value] of Object.entries(constants)) if (known.has(name)) obj.setConstant(name, value);
    applyMapSizes(obj, this.#mapSizes());
    await obj.loadAsync();
    return obj;
  }

  /** Load-time constants; each object gets those it declares. */
  #nodeConstants(node: NodeInfo): Record<string, ConstantValue> {
    const snat = this.#opts.config.masquerade ? node.egress?.ipv4 : undefined;
    // SNAT_IPV4 is host order in C (compared through bpf_htonl); 0 turns masquerading off.
    return { SNAT_IPV4: snat ? ipv4HostOrder(snat) : 0, MONITOR_AGGREGATION: MonitorAggregation[this.#opts.config.monitorAggregation] };
  }

  #requireMaps(): EndpointMaps {
    if (!this.#maps) throw new Error('the base datapath is not loaded');
    return this.#maps;
  }
}

/** Writes ipcache batches into `cilia_ipcache` (IPv4 for now: the datapath is IPv4-only). */
class LpmWriter implements IpCacheMapWriter {
  constructor(readonly maps: EndpointMaps) {}

  write(upserts: readonly IpCacheEntry[], deletes: readonly Cidr[]): void {
    // Prefixes arrive canonical from LocalIpCache: IPv6 ones, and only they, contain a colon.
    const v4 = upserts.filter((e) => !e.prefix.includes(':'));
    if (v4.length > 0) this.maps.ipcache.updateBatch(v4.map((e) => [e.prefix, { identity: e.identity, tunnelEndpoint: e.tunnelEndpoint ?? '0.0.0.0', flags: 0 }] as const));
    for (const p of deletes) if (!p.includes(':')) this.maps.ipcache.delete(p);
  }

  prefixes(): Cidr[] {
    return [...this.maps.ipcache.keys()].map((k) => parsePrefix(k).cidr);
  }
}

/** An IPv4 address as a host-order u32 (`10.0.0.1` → 0x0a000001). */
function ipv4HostOrder(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/**
 * Resume programs, and the main program a pre hook hands back to, go in before any entry program
 * is attached (bpf/README.md, loader duties): a pre program already installed (a plugin set up
 * before the base) then never meets an empty main.
 */
function installResume(slots: ProgramArray, obj: BpfObject, programs: Partial<Record<TcAttachPoint, { resume: string; main?: string }>>): void {
  for (const [ap, p] of Object.entries(programs) as [TcAttachPoint, { resume: string; main?: string }][]) {
    slots.set(slotIndex(ap, 'resume'), obj.program(p.resume));
    if (p.main) slots.set(slotIndex(ap, 'main'), obj.program(p.main));
  }
}
