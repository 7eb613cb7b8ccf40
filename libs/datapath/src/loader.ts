import { fileURLToPath } from 'node:url';
import {
  attachTc,
  BpfObject,
  detachTc,
  probeFeatures,
  queryTc,
  type ConstantValue,
  type ProgramArray,
} from '@cilia/bpf';
import type { AttachPoint, BpfFeatures, BpfObjectSpec, Cidr, Datapath, DatapathSlot, IpCacheEntry, Logger } from '@cilia/core';
import { EndpointMaps, type EndpointKeyValue, type IpcacheKeyValue, type IpcacheValueValue } from './abi.js';
import type { DatapathEndpoint, EndpointDatapath } from './backend.js';
import type { DatapathConfig } from './config.js';
import type { IpCacheMapWriter, LocalIpCache } from './ipcache.js';
import type { NodeInfo } from './node.js';
import { parsePrefix, prefixAddress } from './prefix.js';

/** Where the base objects are: `dist/bpf` of this package (from src/ in tests and from dist/ when built). */
const OBJECT_DIR = new URL('../dist/bpf/', import.meta.url);

const ATTACH_POINTS: readonly AttachPoint[] = ['from-container', 'to-container', 'from-host', 'to-host', 'from-netdev', 'to-netdev', 'xdp-netdev', 'cgroup-sock'];
const SLOTS: readonly DatapathSlot[] = ['service', 'policy', 'l7-redirect', 'shaping', 'forward'];
const SLOTS_PER_AP = 16;
const SLOT_RESUME = 15;
const IDENTITY_HOST = 1;
const IDENTITY_WORLD = 2;
const ENDPOINT_F_HOST = 1;

/** Options of {@link BpfDatapath}. */
export interface BpfDatapathOptions {
  readonly pinRoot: string;
  readonly config: DatapathConfig;
  readonly ipcache: LocalIpCache;
  readonly logger: Logger;
  /** Directory of the base objects; default this package's `dist/bpf/`. */
  readonly objectDir?: URL;
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
  readonly #plugins: BpfObject[] = [];
  #node?: NodeInfo;

  constructor(options: BpfDatapathOptions) {
    this.pinRoot = options.pinRoot;
    this.#opts = options;
    this.#log = options.logger;
  }

  async features(): Promise<BpfFeatures> {
    return probeFeatures(this.pinRoot);
  }

  async ensureNode(node: NodeInfo): Promise<void> {
    if (this.#lxc) return;
    const started = performance.now();
    this.#node = node;
    const constants = this.#nodeConstants(node);
    const lxc = await this.#load('lxc.o', constants);
    this.#lxc = lxc;
    this.#maps = new EndpointMaps(lxc);
    this.#slots = lxc.programArray('cilia_tc_slots');
    this.#installResume(lxc, ['from-container', 'to-container']);
    const egress = node.egress;
    if (egress) {
      const host = await this.#load('host.o', constants);
      this.#host = host;
      this.#installResume(host, ['from-netdev', 'to-netdev']);
      attachTc(host.program('cil_from_netdev'), { interface: egress.ifindex, direction: 'ingress' });
      attachTc(host.program('cil_to_netdev'), { interface: egress.ifindex, direction: 'egress' });
    }
    if (!constants.SNAT_IPV4) {
      this.#log.warn({ egress: egress?.name, masquerade: this.#opts.config.masquerade }, 'no masquerading: it is off, or there is no egress device with an IPv4 address');
    }
    this.#opts.ipcache.attach(new LpmWriter(this.#maps));
    await this.#opts.ipcache.apply({
      upserts: [
        { prefix: '0.0.0.0/0', identity: IDENTITY_WORLD, source: 'generated' },
        ...node.hostIPv4.map((ip) => ({ prefix: `${ip}/32`, identity: IDENTITY_HOST, source: 'generated' as const })),
      ],
      deletes: [],
    });
    this.#log.info({ ms: Math.round(performance.now() - started), egress: egress?.name, masquerade: !!this.#host, pinRoot: this.pinRoot }, 'base datapath loaded');
  }

  async attachEndpoint(ep: DatapathEndpoint): Promise<void> {
    const maps = this.#requireMaps();
    maps.endpoints.update(endpointKey(ep.ipv4), {
      ifindex: ep.podIfindex,
      host_ifindex: ep.hostIfindex,
      identity: ep.identity,
      endpoint_id: ep.id,
      flags: 0,
      mac: macBytes(ep.podMac),
      host_mac: macBytes(ep.hostMac),
    });
    const lxc = this.#lxc!;
    attachTc(lxc.program('cil_from_container'), { interface: ep.hostIfindex, direction: 'ingress' });
    attachTc(lxc.program('cil_to_container'), { interface: ep.hostIfindex, direction: 'egress' });
  }

  async detachEndpoint(ep: DatapathEndpoint): Promise<void> {
    this.#requireMaps().endpoints.delete(endpointKey(ep.ipv4));
  }

  async pruneEndpoints(valid: readonly DatapathEndpoint[]): Promise<number> {
    const maps = this.#requireMaps();
    const keep = new Set(valid.map((e) => e.ipv4));
    let pruned = 0;
    for (const [key, value] of maps.endpoints.entries()) {
      if (value.flags & ENDPOINT_F_HOST) continue;
      const ip = keyAddress(key);
      if (!keep.has(ip) && maps.endpoints.delete(key)) pruned++;
    }
    return pruned;
  }

  async installObject(spec: BpfObjectSpec, constants: Readonly<Record<string, number | bigint | boolean>> = {}): Promise<void> {
    if (!this.#slots) throw new Error('the base datapath is not loaded yet (it loads with the first endpoint)');
    const path = typeof spec.object === 'string' ? spec.object : fileURLToPath(spec.object);
    const obj = BpfObject.open(path, { pinRoot: this.pinRoot, constants });
    await obj.loadAsync();
    for (const [program, where] of Object.entries(spec.programs ?? {})) {
      this.#slots.set(slotIndex(where.attach, where.slot), obj.program(program));
    }
    this.#plugins.push(obj);
  }

  async clearSlot(attach: AttachPoint, slot: DatapathSlot): Promise<void> {
    this.#slots?.clear(slotIndex(attach, slot));
  }

  /** Closes the objects; pins, map contents and tc attachments stay. */
  close(): void {
    for (const obj of [this.#lxc, this.#host, ...this.#plugins]) obj?.close();
    this.#lxc = this.#host = undefined;
    this.#plugins.length = 0;
  }

  /** Removes the egress device programs (tests; a node leaving Cilia). */
  detachNode(): void {
    const egress = this.#node?.egress;
    if (!egress) return;
    for (const direction of ['ingress', 'egress'] as const) {
      if (queryTc({ interface: egress.ifindex, direction })) detachTc({ interface: egress.ifindex, direction });
    }
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
    await obj.loadAsync();
    return obj;
  }

  #installResume(obj: BpfObject, points: readonly AttachPoint[]): void {
    const names = new Set(obj.programNames());
    for (const ap of points) {
      const name = `cil_${ap.replace('-', '_')}_resume`;
      if (names.has(name)) this.#slots!.set(ATTACH_POINTS.indexOf(ap) * SLOTS_PER_AP + SLOT_RESUME, obj.program(name));
    }
  }

  /** Load-time constants; each object gets those it declares. */
  #nodeConstants(node: NodeInfo): Record<string, ConstantValue> {
    const snat = this.#opts.config.masquerade ? node.egress?.ipv4 : undefined;
    // SNAT_IPV4 is host order in C (compared through bpf_htonl); 0 turns masquerading off.
    return { SNAT_IPV4: snat ? ipv4HostOrder(snat) : 0 };
  }

  #requireMaps(): EndpointMaps {
    if (!this.#maps) throw new Error('the base datapath is not loaded');
    return this.#maps;
  }
}

/** Writes ipcache batches into `cilia_ipcache`. */
class LpmWriter implements IpCacheMapWriter {
  constructor(readonly maps: EndpointMaps) {}

  write(upserts: readonly IpCacheEntry[], deletes: readonly Cidr[]): void {
    const v4 = upserts.filter((e) => parsePrefix(e.prefix).family === 'ipv4');
    if (v4.length > 0) this.maps.ipcache.updateBatch(v4.map((e) => [lpmKey(e.prefix), { identity: e.identity, tunnel_endpoint: 0, flags: 0 }] as [IpcacheKeyValue, IpcacheValueValue]));
    for (const p of deletes) if (parsePrefix(p).family === 'ipv4') this.maps.ipcache.delete(lpmKey(p));
  }

  prefixes(): Cidr[] {
    const out: Cidr[] = [];
    for (const key of this.maps.ipcache.keys()) {
      if (key.family !== 2) continue;
      const len = key.prefixlen - 32;
      out.push(parsePrefix(`${[...key.addr.subarray(0, 4)].join('.')}/${len}`).cidr);
    }
    return out;
  }
}

function slotIndex(attach: AttachPoint, slot: DatapathSlot): number {
  return ATTACH_POINTS.indexOf(attach) * SLOTS_PER_AP + SLOTS.indexOf(slot);
}

function lpmKey(cidr: string): IpcacheKeyValue {
  const p = parsePrefix(cidr);
  const addr = new Uint8Array(16);
  addr.set(ipv4Bytes(prefixAddress(p)));
  return { prefixlen: 32 + p.length, family: 2, addr };
}

function endpointKey(ip: string): EndpointKeyValue {
  const addr = new Uint8Array(16);
  addr.set(ipv4Bytes(ip));
  return { addr, family: 2 };
}

function keyAddress(key: EndpointKeyValue): string {
  return [...key.addr.subarray(0, 4)].join('.');
}

function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.').map(Number));
}

/** An IPv4 address as a host-order u32 (`10.0.0.1` → 0x0a000001). */
function ipv4HostOrder(ip: string): number {
  return Buffer.from(ipv4Bytes(ip)).readUInt32BE(0);
}

function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}
