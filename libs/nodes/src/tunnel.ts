import type { Logger, NodeInfo } from '@cilia/core';
import type { Link, NetlinkHandle, RouteSpec } from '@cilia/netlink';

/**
 * The node device tunnel packets leave from and arrive on: `device` by name, or for "auto" (or
 * none) the one holding `address` (the node's tunnel address), else the default route's device;
 * undefined when "auto" finds neither. A named device that does not exist is an error naming
 * `field`.
 */
export async function findUnderlay(nl: NetlinkHandle, options: { address?: string; device?: string; field: string }): Promise<Link | undefined> {
  const { address, device = 'auto', field } = options;
  if (device !== 'auto') {
    const link = await nl.findLink(device);
    if (!link) throw new Error(`${field}: no device named ${device}`);
    return link;
  }
  if (address) {
    const owner = (await nl.listAddresses({ family: 4 })).find((a) => a.address === address);
    if (owner) return nl.getLink(owner.ifindex);
  }
  const route = (await nl.listRoutes({ family: 4 })).find((r) => r.dst === 'default' && r.ifindex !== undefined);
  return route?.ifindex === undefined ? undefined : nl.getLink(route.ifindex);
}

/**
 * An overlay's routes towards `node`: each IPv4 pod CIDR `via <its tunnel endpoint> dev <dev>
 * onlink [src <src>]`, so the node's own traffic to remote pods goes into the overlay's device,
 * whose program finds the endpoint as the route's gateway. None (logged) for a node without a
 * tunnel endpoint or IPv4 address.
 */
export function tunnelRoutes(node: NodeInfo, dev: number, src: string | undefined, log: Logger): RouteSpec[] {
  const endpoint = node.tunnelEndpoint ?? node.ipv4;
  if (!endpoint) {
    log.warn({ node: node.name }, 'node has no tunnel endpoint or IPv4 address: no routes to its pods');
    return [];
  }
  return node.podCidrs
    .filter((cidr) => !cidr.includes(':'))
    .map((dst) => ({ dst, gateway: endpoint, dev, onlink: true, ...(src ? { src } : {}) }));
}
