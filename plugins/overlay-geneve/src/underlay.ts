import type { Link, NetlinkHandle } from '@cilia/netlink';

/**
 * The device tunnel packets leave from and arrive on: `device` by name, or (for "auto") the one
 * carrying `address`, else the default route's.
 */
export async function underlayLink(nl: NetlinkHandle, device: string, address: string | undefined): Promise<Link> {
  if (device !== 'auto') {
    const link = await nl.findLink(device);
    if (!link) throw new Error(`overlay-geneve.device: no device named ${device}`);
    return link;
  }
  if (address) {
    const owner = (await nl.listAddresses({ family: 4 })).find((a) => a.address === address);
    if (owner) return nl.getLink(owner.ifindex);
  }
  const route = (await nl.listRoutes({ family: 4 })).find((r) => r.dst === 'default' && r.ifindex !== undefined);
  if (route?.ifindex === undefined) {
    throw new Error(`overlay-geneve.device: "auto" found no device${address ? ` holding ${address}` : ''} and no default route; name one`);
  }
  return nl.getLink(route.ifindex);
}

/** An IPv4 address as a host-order u32 (`10.0.0.1` → 0x0a000001), as `.rodata` constants take it. */
export function ipv4HostOrder(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}
