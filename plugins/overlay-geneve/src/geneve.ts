import { fileURLToPath } from 'node:url';
import { BpfObject, ensureBpffs, SlotIndex, AttachPointIndex } from '@cilia/bpf';
import type { Encapsulation, Logger, NodeInfo } from '@cilia/core';
import { openNetlink, type Link, type NetlinkHandle } from '@cilia/netlink';
import { NodeRouteTable } from '@cilia/nodes';
import type { GeneveConfig } from './config.js';
import { IngressOrder } from './ingress-order.js';
import { ipv4HostOrder, underlayLink } from './underlay.js';

/** Outer Ethernet (14) + IPv4 (20) + UDP (8) + Geneve (8) headers; the inner frame's Ethernet
 * header takes the place of the outer one's. */
export const GENEVE_OVERHEAD = 50;
/** `bpf/overlay-geneve.c` → `dist/bpf/overlay-geneve.o`; `../` is the package root from src/ and from dist/. */
export const GENEVE_OBJECT = new URL('../dist/bpf/overlay-geneve.o', import.meta.url);
export const GENEVE_PROGRAMS = { forward: 'cil_geneve_to_overlay', ingress: 'cil_geneve_from_overlay' } as const;

/** How often the receive program's place in front of the base ingress program is checked. */
const ORDER_CHECK_MS = 1000;
const SLOTS_PER_ATTACH_POINT = 16;
const FORWARD_SLOT = AttachPointIndex['from-container'] * SLOTS_PER_ATTACH_POINT + SlotIndex.forward;

/** What {@link GeneveEncapsulation} needs. */
export interface GeneveEncapsulationOptions {
  readonly config: GeneveConfig;
  /** The agent's bpffs pin root: the object shares the datapath's pinned maps and slot table. */
  readonly pinRoot: string;
  readonly logger: Logger;
  /** Netlink in the node's namespace; default the agent's own. */
  readonly netlink?: () => Promise<NetlinkHandle>;
  /** Path of the compiled object; default this package's `dist/bpf/overlay-geneve.o`. */
  readonly objectPath?: string;
}

/**
 * The Geneve overlay, all in eBPF (this kernel has no Geneve device). Pods' packets to pods of
 * other nodes are encapsulated in the from-container forward slot — towards the tunnel endpoint
 * the ipcache names, the source identity in the VNI — and sent straight out of the underlay
 * device. The receive program on the underlay's tc ingress takes Geneve to this node apart and
 * hands the inner packet to the destination's to-container pipeline with the VNI as its source
 * identity. Each other node gets routes `<pod CIDR> via <its tunnel endpoint> dev <underlay>
 * onlink`, for the node's own traffic to remote pods (which goes unencapsulated: see README).
 */
export class GeneveEncapsulation implements Encapsulation {
  readonly mode = 'geneve';
  readonly overhead = GENEVE_OVERHEAD;
  readonly #o: GeneveEncapsulationOptions;
  readonly #log: Logger;
  readonly #routes: NodeRouteTable;
  #nl?: Promise<NetlinkHandle>;
  #object?: BpfObject;
  #order?: IngressOrder;
  #timer?: NodeJS.Timeout;
  #underlay?: Link;
  #local?: NodeInfo;

  constructor(options: GeneveEncapsulationOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#routes = new NodeRouteTable({ logger: options.logger, netlink: () => this.#netlink() });
  }

  /** The underlay device, once set up. */
  get underlay(): Link | undefined {
    return this.#underlay;
  }

  /** tc handle of the receive program on the underlay's ingress (see {@link IngressOrder}). */
  get ingressHandle(): number | undefined {
    return this.#order?.handle;
  }

  async setup(local: NodeInfo): Promise<void> {
    const address = local.tunnelEndpoint ?? local.ipv4;
    const nl = await this.#netlink();
    const underlay = await underlayLink(nl, this.#o.config.device, address);
    const object = this.#load(address);
    let order: IngressOrder;
    try {
      // Receive first, the forward slot last: by the time pods send into the tunnel, this node
      // takes tunnel packets apart.
      order = new IngressOrder({ program: object.program(GENEVE_PROGRAMS.ingress), ifindex: underlay.index, logger: this.#log });
      order.ensureFront();
      object.programArray('cilia_tc_slots').set(FORWARD_SLOT, object.program(GENEVE_PROGRAMS.forward));
    } catch (err) {
      object.close();
      throw err;
    }
    this.#object?.close();
    this.#object = object;
    this.#order = order;
    this.#underlay = underlay;
    this.#local = local;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#keepInFront(), ORDER_CHECK_MS).unref();
    this.#log.info(
      { underlay: underlay.name, ifindex: underlay.index, port: this.#o.config.port, tunnelAddress: address ?? 'any node address', podMtu: underlay.mtu - GENEVE_OVERHEAD },
      'geneve overlay ready',
    );
  }

  async upsertNode(node: NodeInfo): Promise<void> {
    const underlay = this.#requireUnderlay();
    const endpoint = node.tunnelEndpoint ?? node.ipv4;
    if (!endpoint) {
      this.#log.warn({ node: node.name }, 'node has no tunnel endpoint or IPv4 address: no routes to its pods');
      return this.#routes.remove(node.name);
    }
    const src = this.#local?.tunnelEndpoint ?? this.#local?.ipv4;
    await this.#routes.set(
      node.name,
      node.podCidrs
        .filter((cidr) => !cidr.includes(':'))
        .map((dst) => ({ dst, gateway: endpoint, dev: underlay.index, onlink: true, ...(src ? { src } : {}) })),
    );
  }

  async deleteNode(name: string): Promise<void> {
    await this.#routes.remove(name);
  }

  /** The routes set towards `node`. */
  routes(node: string) {
    return this.#routes.routes(node);
  }

  /** Closes handles; the programs, the slot and the routes stay (forwarding goes on across a restart). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#object?.close();
    this.#object = undefined;
    await this.#routes.close();
    const nl = this.#nl;
    this.#nl = undefined;
    await (await nl?.catch(() => undefined))?.close();
  }

  /** Takes the overlay out: the forward slot (if still ours), the receive program. Routes stay with their nodes. */
  async teardown(): Promise<void> {
    const object = this.#object;
    if (object) {
      const slots = object.programArray('cilia_tc_slots');
      if (slots.get(FORWARD_SLOT) === object.program(GENEVE_PROGRAMS.forward).id) slots.clear(FORWARD_SLOT);
    }
    this.#order?.detach();
    await this.close();
  }

  #keepInFront(): void {
    try {
      if (this.#order?.ensureFront()) this.#log.info({ underlay: this.#underlay?.name }, 'base ingress program (re)attached: geneve receive program moved in front again');
    } catch (err) {
      this.#log.warn({ underlay: this.#underlay?.name, err: err instanceof Error ? err.message : String(err) }, 'cannot check the geneve receive program on the underlay');
    }
  }

  #load(address: string | undefined): BpfObject {
    const path = this.#o.objectPath ?? fileURLToPath(GENEVE_OBJECT);
    ensureBpffs(this.#o.pinRoot);
    let object: BpfObject;
    try {
      object = BpfObject.open(path, { pinRoot: this.#o.pinRoot });
    } catch (err) {
      throw new Error(`cannot open ${path} (is @cilia/plugin-overlay-geneve built?): ${(err as Error).message}`);
    }
    try {
      object.setConstant('GENEVE_PORT', this.#o.config.port);
      if (address) object.setConstant('TUNNEL_IPV4', ipv4HostOrder(address));
      object.load();
    } catch (err) {
      object.close();
      throw err;
    }
    return object;
  }

  #requireUnderlay(): Link {
    if (!this.#underlay) throw new Error('the geneve overlay is not set up yet');
    return this.#underlay;
  }

  #netlink(): Promise<NetlinkHandle> {
    return (this.#nl ??= (this.#o.netlink ?? openNetlink)());
  }
}
