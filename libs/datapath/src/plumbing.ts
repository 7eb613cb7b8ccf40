import { LEGACY_GSO_SIZE } from './big-tcp.js';
import { createNetns, deleteNetns, openNetns, type NetlinkHandle } from '@cilia/netlink';

/** What one endpoint's veth plumbing needs. */
export interface PlumbingSpec {
  /** Path of the pod's netns. */
  readonly netns: string;
  readonly hostInterface: string;
  readonly interfaceName: string;
  readonly ipv4: string;
  readonly gateway: string;
  readonly mtu: number;
  /** IPv4 GSO/GRO size of both sides, when above the kernel's 64 KiB default (BIG TCP). */
  readonly gsoMaxSize?: number;
  /** Bring the pod's loopback up (the agent created the netns). */
  readonly loopbackUp: boolean;
}

/** The links plumbing made. */
export interface PlumbedLinks {
  readonly hostIfindex: number;
  readonly hostMac: string;
  readonly podIfindex: number;
  readonly podMac: string;
}

/**
 * Creates the veth pair with its peer directly in the pod netns, then, inside the pod:
 * `ipv4/32` on the interface, a scope-link route to the gateway, the default route via the
 * gateway, and a permanent neighbour gateway → host-side MAC (no ARP for the gateway, which
 * lives nowhere: the host side answers for it by being the only next hop). On the host:
 * the link up, a /32 route to the pod through it, rp_filter off (packets the datapath
 * redirects arrive from addresses the host may not route back the same way).
 * On failure the host-side link (and with it the pod side) is removed again.
 */
export async function plumbEndpoint(host: NetlinkHandle, spec: PlumbingSpec): Promise<PlumbedLinks> {
  const stale = await host.findLink(spec.hostInterface);
  if (stale) await host.deleteLink(stale.index);
  const hostLink = await host.addVeth({ name: spec.hostInterface, peerName: spec.interfaceName, peerNetns: spec.netns, mtu: spec.mtu, up: true });
  const big = spec.gsoMaxSize && spec.gsoMaxSize > LEGACY_GSO_SIZE ? { gsoIpv4MaxSize: spec.gsoMaxSize, groIpv4MaxSize: spec.gsoMaxSize } : {};
  try {
    if (big.gsoIpv4MaxSize) await host.setLink(hostLink.index, big);
    const pod = await openNetns(spec.netns);
    let podLink;
    try {
      podLink = await pod.getLink(spec.interfaceName);
      if (spec.loopbackUp) await pod.setLinkUp('lo');
      await pod.setLink(podLink.index, { up: true, mtu: spec.mtu, ...big });
      await pod.addAddress({ dev: podLink.index, address: `${spec.ipv4}/32`, noPrefixRoute: true });
      await pod.addRoute({ dst: `${spec.gateway}/32`, dev: podLink.index, scope: 'link' });
      await pod.addRoute({ dst: 'default', gateway: spec.gateway, dev: podLink.index });
      await pod.addNeighbour({ dev: podLink.index, address: spec.gateway, mac: hostLink.mac! });
    } finally {
      await pod.close();
    }
    await host.setSysctl(`net.ipv4.conf.${spec.hostInterface}.rp_filter`, 0);
    await host.setSysctl(`net.ipv4.conf.${spec.hostInterface}.forwarding`, 1);
    await host.replaceRoute({ dst: `${spec.ipv4}/32`, dev: hostLink.index, scope: 'link' });
    return { hostIfindex: hostLink.index, hostMac: hostLink.mac!, podIfindex: podLink.index, podMac: podLink.mac! };
  } catch (err) {
    await host.deleteLink(hostLink.index).catch(() => undefined);
    throw err;
  }
}

/**
 * Gives an existing endpoint's veth, both sides, the IPv4 GSO/GRO size `size`: an endpoint
 * adopted at restart follows a changed `datapath.bigTcp` without being recreated. Connections
 * open meanwhile keep the size they started with; where that is now too large for the egress
 * device, the kernel segments their packets there.
 */
export async function resizeEndpointGso(host: NetlinkHandle, link: { hostIfindex: number; netns: string; interfaceName: string }, size: number): Promise<void> {
  const sizes = { gsoIpv4MaxSize: size, groIpv4MaxSize: size };
  await host.setLink(link.hostIfindex, sizes);
  const pod = await openNetns(link.netns);
  try {
    await pod.setLink((await pod.getLink(link.interfaceName)).index, sizes);
  } finally {
    await pod.close();
  }
}

/**
 * Removes an endpoint's links (deleting the host side takes the pod side and the /32 route
 * with it). A link already gone is not an error.
 */
export async function unplumbEndpoint(host: NetlinkHandle, hostInterface: string): Promise<void> {
  const link = await host.findLink(hostInterface);
  if (link) await host.deleteLink(link.index);
}

/** Creates the agent-owned netns `name` and returns its path. */
export function createEndpointNetns(name: string): Promise<string> {
  return createNetns(name);
}

/** Deletes an agent-owned netns; one already gone is not an error. */
export async function deleteEndpointNetns(name: string): Promise<void> {
  try {
    await deleteNetns(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
