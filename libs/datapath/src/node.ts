import type { Link, NetlinkHandle } from '@cilia/netlink';
import { gsoSizeFor, type EncapsulationTraits } from './big-tcp.js';
import type { DatapathConfig } from './config.js';

/** The node device pod traffic leaves through. */
export interface EgressDevice {
  readonly name: string;
  readonly ifindex: number;
  readonly mac?: string;
  /** Its first IPv4 address: the source of masqueraded traffic. */
  readonly ipv4?: string;
  readonly mtu: number;
  /** The device as netlink reported it at discovery. */
  readonly link?: Link;
}

/** What the datapath knows about the node it runs on. */
export interface NodeInfo {
  readonly egress?: EgressDevice;
  /** MTU of endpoint veths. */
  readonly mtu: number;
  /** IPv4 GSO/GRO size of endpoint veths and GSO size of the egress device (above 65536: BIG TCP); default 65536. */
  readonly gsoMaxSize?: number;
  /** IPv4 GRO size of the egress device (64 KiB with an overlay, see GsoSizes); default 65536. */
  readonly egressGroMaxSize?: number;
  /** Why BIG TCP, asked for as "auto", is off. */
  readonly bigTcpOff?: string;
  /** Every IPv4 address of the node's own interfaces (reserved:host in the ipcache). */
  readonly hostIPv4: readonly string[];
}

/**
 * Finds the egress device (configured, or the device of the default IPv4 route), the
 * endpoint MTU and GSO size. Reads only: nothing on the node changes here. Throws when
 * `datapath.bigTcp` is required but not possible.
 */
export async function discoverNode(host: NetlinkHandle, config: DatapathConfig, encapsulation?: EncapsulationTraits): Promise<NodeInfo> {
  let egress: EgressDevice | undefined;
  let ref: string | number | undefined = config.egressDevice === 'auto' ? undefined : config.egressDevice;
  if (ref === undefined) {
    const routes = await host.listRoutes({ family: 4 });
    ref = routes.find((r) => r.dst === 'default' && r.ifindex !== undefined)?.ifindex;
  }
  if (ref !== undefined) {
    const link = await host.findLink(ref);
    if (!link) throw new Error(`datapath.egressDevice: no interface named ${JSON.stringify(ref)}`);
    const addrs = await host.listAddresses({ dev: link.index, family: 4 });
    egress = { name: link.name, ifindex: link.index, mac: link.mac, ipv4: addrs[0]?.address, mtu: link.mtu, link };
  }
  const all = await host.listAddresses({ family: 4 });
  const hostIPv4 = [...new Set(all.map((a) => a.address))];
  // An overlay's headers must fit in the egress device's MTU around a full-size pod packet.
  const mtu = config.mtu === 'auto' ? (egress?.mtu ?? 1500) - (encapsulation?.overhead ?? 0) : config.mtu;
  const gso = gsoSizeFor(config.bigTcp, egress?.link, encapsulation);
  return { egress, mtu, hostIPv4, gsoMaxSize: gso.size, egressGroMaxSize: gso.egressGro, ...(gso.why ? { bigTcpOff: gso.why } : {}) };
}
