import { fileURLToPath } from 'node:url';
import { AttachPointIndex, attachTc, BpfObject, detachTc, ensureBpffs, queryTc, SlotIndex, type ProgramArray } from '@cilia/bpf';
import type { Logger, NodeInfo } from '@cilia/core';
import type { Link, NetlinkHandle, RouteSpec } from '@cilia/netlink';
import { findUnderlay, RoutedEncapsulation, tunnelRoutes } from '@cilia/nodes';
import type { GeneveConfig } from './config.js';
import { ipv4HostOrder } from './address.js';

/** Outer Ethernet (14) + IPv4 (20) + UDP (8) + Geneve (8) headers; the inner frame's Ethernet
 * header takes the place of the outer one's. */
export const GENEVE_OVERHEAD = 50;
/** `bpf/overlay-geneve.c` → `dist/bpf/overlay-geneve.o`; `../` is the package root from src/ and from dist/. */
export const GENEVE_OBJECT = new URL('../dist/bpf/overlay-geneve.o', import.meta.url);
export const GENEVE_PROGRAMS = { forward: 'cil_geneve_to_overlay', ingress: 'cil_geneve_from_overlay', host: 'cil_geneve_from_host' } as const;

// Indices in `cilia_tc_slots` (bpf/include/cilia/maps.h: attach point * 16 + slot).
const SLOTS_PER_ATTACH_POINT = 16;
/** CILIA_SLOT_PRE: host.o's cil_from_netdev runs this index before anything else. */
const PRE_HOOK = 14;
export const GENEVE_SLOTS = {
  forward: AttachPointIndex['from-container'] * SLOTS_PER_ATTACH_POINT + SlotIndex.forward,
  receive: AttachPointIndex['from-netdev'] * SLOTS_PER_ATTACH_POINT + PRE_HOOK,
} as const;
/** Where earlier versions attached the receive program themselves (tc ingress, priority 1). */
const LEGACY_INGRESS_HANDLES = [0x6081, 0x6082] as const;
/** CILIA_SLOT_MAIN of from-netdev: filled once a base datapath with the pre hook is loaded. */
const FROM_NETDEV_MAIN = AttachPointIndex['from-netdev'] * SLOTS_PER_ATTACH_POINT + 13;

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
 * device. The receive program sits in the from-netdev pre hook, which the base's
 * `cil_from_netdev` on the node's device runs before anything else: it takes Geneve to this node
 * apart and hands the inner packet to the destination's to-container pipeline with the VNI as its
 * source identity, and gives everything else back to the base. Each other node gets routes
 * `<pod CIDR> via <its tunnel endpoint> dev <host device> onlink`: the node's own traffic to
 * remote pods goes into the host device (a veth, there being no Geneve device), whose egress
 * program encapsulates it the same way.
 */
export class GeneveEncapsulation extends RoutedEncapsulation {
  readonly mode = 'geneve';
  readonly overhead = GENEVE_OVERHEAD;
  /** Pod packets leave and arrive through our eBPF (bpf/lib/udp_tunnel.h), which carries BIG TCP's. */
  readonly bigTcp = true;
  readonly #o: GeneveEncapsulationOptions;
  readonly #log: Logger;
  #object?: BpfObject;
  #underlay?: Link;
  #hostDevice?: Link;
  #local?: NodeInfo;

  constructor(options: GeneveEncapsulationOptions) {
    super({ logger: options.logger, ...(options.netlink ? { netlink: options.netlink } : {}) });
    this.#o = options;
    this.#log = options.logger;
  }

  /** The underlay device, once set up. */
  get underlay(): Link | undefined {
    return this.#underlay;
  }

  async setup(local: NodeInfo): Promise<void> {
    const address = local.tunnelEndpoint ?? local.ipv4;
    const nl = await this.netlink();
    const underlay = await findUnderlay(nl, { address, device: this.#o.config.device, field: 'overlay-geneve.device' });
    if (!underlay) throw new Error(`overlay-geneve.device: "auto" found no device${address ? ` holding ${address}` : ''} and no default route; name one`);
    const hostDevice = await this.#ensureHostDevice(nl, underlay.mtu - GENEVE_OVERHEAD);
    const object = this.#load(address, hostDevice);
    try {
      // Receive first, the forward slot last: by the time pods send into the tunnel, this node
      // takes tunnel packets apart. An atomic swap each, so a re-setup leaves no gap.
      attachTc(object.program(GENEVE_PROGRAMS.host), { interface: hostDevice.index, direction: 'egress' });
      const slots = object.programArray('cilia_tc_slots');
      slots.set(GENEVE_SLOTS.receive, object.program(GENEVE_PROGRAMS.ingress));
      slots.set(GENEVE_SLOTS.forward, object.program(GENEVE_PROGRAMS.forward));
      this.#dropLegacyAttachment(slots, underlay);
    } catch (err) {
      object.close();
      throw err;
    }
    this.#object?.close();
    this.#object = object;
    this.#underlay = underlay;
    this.#hostDevice = hostDevice;
    this.#local = local;
    this.#log.info(
      { underlay: underlay.name, ifindex: underlay.index, hostDevice: hostDevice.name, port: this.#o.config.port, tunnelAddress: address ?? 'any node address', podMtu: underlay.mtu - GENEVE_OVERHEAD },
      'geneve overlay ready',
    );
  }

  protected routesTo(node: NodeInfo): RouteSpec[] {
    return tunnelRoutes(node, this.#requireHostDevice().index, this.#local?.tunnelEndpoint ?? this.#local?.ipv4, this.#log);
  }

  /** Closes handles; the programs, the slots and the routes stay (forwarding goes on across a restart). */
  override async close(): Promise<void> {
    this.#object?.close();
    this.#object = undefined;
    await super.close();
  }

  /** Takes the overlay out: the forward slot and the receive program, where still ours. Routes stay with their nodes. */
  async teardown(): Promise<void> {
    const object = this.#object;
    if (object) {
      const slots = object.programArray('cilia_tc_slots');
      for (const [index, program] of [[GENEVE_SLOTS.forward, GENEVE_PROGRAMS.forward], [GENEVE_SLOTS.receive, GENEVE_PROGRAMS.ingress]] as const) {
        if (slots.get(index) === object.program(program).id) slots.clear(index);
      }
    }
    await this.close();
  }

  /**
   * Earlier versions attached the receive program to the underlay's tc ingress themselves. Once a
   * base with the pre hook is loaded (its main program installed) that copy is only in the way;
   * before, it is what still decapsulates, so it stays until a later setup.
   */
  #dropLegacyAttachment(slots: ProgramArray, underlay: Link): void {
    if (slots.get(FROM_NETDEV_MAIN) === undefined) return;
    for (const handle of LEGACY_INGRESS_HANDLES) {
      const where = { interface: underlay.index, direction: 'ingress' as const, handle, priority: 1 };
      if (queryTc(where) === 0) continue;
      detachTc(where);
      this.#log.info({ underlay: underlay.name, handle }, 'receive program of an earlier version detached from the underlay (the pre hook took over)');
    }
  }

  /**
   * The host device: one side of a veth pair (the kernel has no Geneve device to route into),
   * NOARP so routes into it need no neighbour, the overlay's MTU. An existing one is kept: its
   * program and routes carry traffic across a restart.
   */
  async #ensureHostDevice(nl: NetlinkHandle, mtu: number): Promise<Link> {
    const name = this.#o.config.hostDevice;
    const peerName = `${name.slice(0, 13)}_p`;
    let link = await nl.findLink(name);
    if (link && link.kind !== 'veth') throw new Error(`overlay-geneve.hostDevice: ${name} exists and is a ${link.kind ?? 'physical'} device, not a veth`);
    link ??= await nl.addVeth({ name, peerName, mtu, noArp: true });
    await nl.setLink(link.index, { mtu, up: true });
    // The peer only gives the device its carrier.
    if (link.peerIndex !== undefined && link.peerNetnsId === undefined) await nl.setLink(link.peerIndex, { mtu, up: true });
    else await nl.setLinkUp(peerName);
    // The egress program's FIB lookup is a router's, as if the packet came in on the device;
    // no IPv6 on the overlay.
    await nl.setSysctl(`net.ipv4.conf.${name}.forwarding`, 1);
    await nl.setSysctl(`net.ipv4.conf.${name}.rp_filter`, 0);
    await nl.setSysctl(`net.ipv6.conf.${name}.disable_ipv6`, 1).catch(() => undefined);
    return nl.getLink(link.index);
  }

  #load(address: string | undefined, hostDevice: Link): BpfObject {
    ensureBpffs(this.#o.pinRoot);
    const constants = { GENEVE_PORT: this.#o.config.port, HOST_DEVICE_IFINDEX: hostDevice.index, ...(address ? { TUNNEL_IPV4: ipv4HostOrder(address) } : {}) };
    return BpfObject.openAndLoad(this.#o.objectPath ?? fileURLToPath(GENEVE_OBJECT), { pinRoot: this.#o.pinRoot, constants, builtBy: '@cilia/plugin-overlay-geneve' });
  }

  #requireHostDevice(): Link {
    if (!this.#hostDevice) throw new Error('the geneve overlay is not set up yet');
    return this.#hostDevice;
  }
}
