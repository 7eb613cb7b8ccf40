import type { BpfConstants, LoadedBpfObject, Logger, NodeInfo } from '@cilia/core';
import { setSysctl, type Link, type NetlinkHandle, type RouteSpec } from '@cilia/netlink';
import { findUnderlay, RoutedEncapsulation, tunnelRoutes } from '@cilia/nodes';
import type { VxlanConfig } from './config.js';
import { ipv4NetworkOrderU32 } from './address.js';

/** Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8) headers. */
export const VXLAN_OVERHEAD = 50;
/**
 * The MAC of a node's VXLAN device: `02:c1` + the 4 bytes of its tunnel endpoint. A sender
 * derives the receiver's device MAC from the endpoint it tunnels to, so its inner frames are
 * addressed to that device without asking, and carry a source MAC that is not the receiver's
 * own (which the VXLAN driver drops as a loop).
 */
export function vxlanDeviceMac(tunnelEndpoint: string): string {
  return ['02', 'c1', ...tunnelEndpoint.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}
/** `bpf/vxlan.c` → `dist/bpf/vxlan.o`; `../` is the package root from src/ and from dist/. */
export const VXLAN_OBJECT = new URL('../dist/bpf/vxlan.o', import.meta.url);

/** Its programs: the two slot programs the plugin declares, and the two on the VXLAN device. */
export const VXLAN_PROGRAMS = { forward: 'cil_vxlan_forward', ingress: 'cil_from_overlay', egress: 'cil_to_overlay', underlay: 'cil_vxlan_from_underlay' } as const;
const PROGRAMS = VXLAN_PROGRAMS;

/** What {@link VxlanEncapsulation} needs. */
export interface VxlanEncapsulationOptions {
  readonly config: VxlanConfig;
  readonly logger: Logger;
  /** The plugin's object as the agent installed it (its slot programs in place). */
  readonly object: () => LoadedBpfObject;
  /** Netlink in the node's namespace; default the agent's own. */
  readonly netlink?: () => Promise<NetlinkHandle>;
}

/**
 * The VXLAN overlay. Pods' packets to other nodes are encapsulated in the from-container forward
 * slot — towards the tunnel endpoint the ipcache names, the source identity as VNI — and sent
 * straight out of the underlay device; pod-bound VXLAN is taken apart in the from-netdev pre hook
 * (both slots declared by the plugin and filled by the agent, with the constants {@link prepare}
 * returns). An external (collect_md) VXLAN device carries the rest:
 * each other node gets routes `<pod CIDR> via <its tunnel endpoint> dev <device> onlink`, so the
 * node itself reaches remote pods through the device, whose egress program keys those packets;
 * its ingress program hands what the device decapsulates to the destination's to-container
 * pipeline with the VNI as source identity (pod-bound VXLAN is taken apart on the underlay
 * before it gets that far).
 */
export class VxlanEncapsulation extends RoutedEncapsulation {
  readonly mode = 'vxlan';
  readonly overhead = VXLAN_OVERHEAD;
  /** Pod packets leave and arrive through our eBPF (bpf/lib/udp_tunnel.h), which carries BIG TCP's. */
  readonly bigTcp = true;
  readonly #o: VxlanEncapsulationOptions;
  readonly #log: Logger;
  #device?: Link;
  #local?: NodeInfo;

  constructor(options: VxlanEncapsulationOptions) {
    super({ logger: options.logger, ...(options.netlink ? { netlink: options.netlink } : {}) });
    this.#o = options;
    this.#log = options.logger;
  }

  /** The VXLAN device, once set up. */
  get device(): Link | undefined {
    return this.#device;
  }

  /**
   * The device (made, or kept with its attachments and routes) and the object's load-time
   * constants: its ifindex, the port, this node's tunnel endpoint.
   */
  async prepare(local: NodeInfo): Promise<BpfConstants> {
    const nl = await this.netlink();
    const underlay = await findUnderlay(nl, { address: local.ipv4, field: 'overlay-vxlan' });
    const mtu = (underlay?.mtu ?? 1500) - VXLAN_OVERHEAD;
    const self = local.tunnelEndpoint ?? local.ipv4;
    this.#device = await this.#ensureDevice(nl, mtu, self ? vxlanDeviceMac(self) : undefined);
    this.#local = local;
    this.#log.info({ device: this.#device.name, ifindex: this.#device.index, port: this.#o.config.port, mtu, underlay: underlay?.name }, 'vxlan device ready');
    return { VXLAN_IFINDEX: this.#device.index, VXLAN_PORT: this.#o.config.port, ...(self ? { LOCAL_TUNNEL_ENDPOINT: ipv4NetworkOrderU32(self) } : {}) };
  }

  /** The device's own programs (the node's traffic to remote pods, and what the device takes apart). */
  async setup(local: NodeInfo): Promise<void> {
    const device = this.#requireDevice();
    const object = this.#o.object();
    object.attachTc(PROGRAMS.ingress, { ifindex: device.index, direction: 'ingress' });
    object.attachTc(PROGRAMS.egress, { ifindex: device.index, direction: 'egress' });
    this.#local = local;
    this.#log.info({ device: device.name }, 'vxlan overlay ready');
  }

  protected routesTo(node: NodeInfo): RouteSpec[] {
    return tunnelRoutes(node, this.#requireDevice().index, this.#local?.ipv4, this.#log);
  }

  async #ensureDevice(nl: NetlinkHandle, mtu: number, mac: string | undefined): Promise<Link> {
    const { device: name, port } = this.#o.config;
    let link = await nl.findLink(name);
    if (link && link.kind !== 'vxlan') throw new Error(`overlay-vxlan.device: ${name} exists and is a ${link.kind ?? 'physical'} device, not vxlan`);
    // An existing device is kept (its attachments and routes carry traffic across a restart).
    link ??= await nl.addVxlan({ name, port, mtu, noArp: true, ...(mac ? { mac } : {}) });
    await nl.setLink(link.index, { mtu, up: true, ...(mac ? { mac } : {}) });
    // Decapsulated packets for the node come from remote pod addresses, routed back through
    // this device; the node forwards what it does not deliver itself; no IPv6 on the overlay.
    await setSysctl(`net.ipv4.conf.${name}.rp_filter`, 0);
    await setSysctl(`net.ipv4.conf.${name}.forwarding`, 1);
    await setSysctl(`net.ipv6.conf.${name}.disable_ipv6`, 1).catch(() => undefined);
    return nl.getLink(link.index);
  }

  #requireDevice(): Link {
    if (!this.#device) throw new Error('the vxlan device is not there yet (prepare makes it)');
    return this.#device;
  }
}
