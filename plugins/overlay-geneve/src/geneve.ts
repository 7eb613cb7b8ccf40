import { detachTc, queryTc } from '@cilia/bpf';
import type { BpfConstants, LoadedBpfObject, Logger, NodeInfo } from '@cilia/core';
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

/** Where earlier versions attached the receive program themselves (tc ingress, priority 1). */
const LEGACY_INGRESS_HANDLES = [0x6081, 0x6082] as const;

/** What {@link GeneveEncapsulation} needs. */
export interface GeneveEncapsulationOptions {
  readonly config: GeneveConfig;
  readonly logger: Logger;
  /** The plugin's object as the agent installed it (its slot programs in place). */
  readonly object: () => LoadedBpfObject;
  /** Netlink in the node's namespace; default the agent's own. */
  readonly netlink?: () => Promise<NetlinkHandle>;
}

/**
 * The Geneve overlay, all in eBPF (this kernel has no Geneve device). Pods' packets to pods of
 * other nodes are encapsulated in the from-container forward slot — towards the tunnel endpoint
 * the ipcache names, the source identity in the VNI — and sent straight out of the underlay
 * device. Both slot programs are declared by the plugin and installed by the agent, with the
 * constants {@link prepare} returns. The receive program sits in the from-netdev pre hook, which the base's
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

  /**
   * The underlay and the host device (made, or kept with its program and routes), and the
   * object's load-time constants: the port, the host device's ifindex, this node's tunnel address.
   */
  async prepare(local: NodeInfo): Promise<BpfConstants> {
    const address = local.tunnelEndpoint ?? local.ipv4;
    const nl = await this.netlink();
    const underlay = await findUnderlay(nl, { address, device: this.#o.config.device, field: 'overlay-geneve.device' });
    if (!underlay) throw new Error(`overlay-geneve.device: "auto" found no device${address ? ` holding ${address}` : ''} and no default route; name one`);
    this.#underlay = underlay;
    this.#hostDevice = await this.#ensureHostDevice(nl, underlay.mtu - GENEVE_OVERHEAD);
    this.#local = local;
    return { GENEVE_PORT: this.#o.config.port, HOST_DEVICE_IFINDEX: this.#hostDevice.index, ...(address ? { TUNNEL_IPV4: ipv4HostOrder(address) } : {}) };
  }

  /** The host device's program (the node's own traffic to remote pods). */
  async setup(local: NodeInfo): Promise<void> {
    const hostDevice = this.#requireHostDevice();
    const underlay = this.#underlay!;
    this.#o.object().attachTc(GENEVE_PROGRAMS.host, { ifindex: hostDevice.index, direction: 'egress' });
    this.#dropLegacyAttachment(underlay);
    this.#local = local;
    const address = local.tunnelEndpoint ?? local.ipv4;
    this.#log.info(
      { underlay: underlay.name, ifindex: underlay.index, hostDevice: hostDevice.name, port: this.#o.config.port, tunnelAddress: address ?? 'any node address', podMtu: underlay.mtu - GENEVE_OVERHEAD },
      'geneve overlay ready',
    );
  }

  protected routesTo(node: NodeInfo): RouteSpec[] {
    return tunnelRoutes(node, this.#requireHostDevice().index, this.#local?.tunnelEndpoint ?? this.#local?.ipv4, this.#log);
  }

  /**
   * Earlier versions attached the receive program to the underlay's tc ingress themselves. Set up
   * runs once the base datapath (with the pre hook, where the receive program is now) has
   * loaded, so that copy is only in the way.
   */
  #dropLegacyAttachment(underlay: Link): void {
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

  #requireHostDevice(): Link {
    if (!this.#hostDevice) throw new Error('the geneve host device is not there yet (prepare makes it)');
    return this.#hostDevice;
  }
}
