import type { Link, NetlinkHandle } from '@cilia/netlink';

/** The node device that carries `ipv4` (the node address tunnels leave from), else the default route's. */
export async function underlayLink(nl: NetlinkHandle, ipv4: string | undefined): Promise<Link | undefined> {
  if (ipv4) {
    const owner = (await nl.listAddresses({ family: 4 })).find((a) => a.address === ipv4);
    if (owner) return nl.getLink(owner.ifindex);
  }
  const route = (await nl.listRoutes({ family: 4 })).find((r) => r.dst === 'default' && r.ifindex !== undefined);
  return route?.ifindex === undefined ? undefined : nl.getLink(route.ifindex);
}

/** An IPv4 address as the u32 whose memory holds it in network order (how BPF reads a `__be32`). */
export function ipv4NetworkOrderU32(ip: string): number {
  return Buffer.from(ip.split('.').map(Number)).readUInt32LE(0);
}

