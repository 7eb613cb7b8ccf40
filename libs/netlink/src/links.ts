import { formatMac, parseMac } from './addr.js';
import {
  AF_UNSPEC,
  IFF,
  IFLA,
  IFLA_INFO,
  IFLA_VXLAN,
  NLM_F,
  OPER_STATES,
  RTEXT_FILTER_SKIP_STATS,
  RTM,
  VETH_INFO_PEER,
} from './constants.js';
import { NetlinkError, NetlinkInputError } from './errors.js';
import { resolveNetnsPath, withNetnsFd } from './paths.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrI32, familyHeader, attrString, attrU32, attrU8, parseAttrs } from './wire.js';

/** A link by name ("lxc1234") or by ifindex. */
export type LinkRef = string | number;

/** Operational state as the kernel reports it (RFC 2863). */
export type OperState = (typeof OPER_STATES)[number];

/** A network interface. */
export interface Link {
  index: number;
  name: string;
  mtu: number;
  /** Hardware address; undefined for links without one. */
  mac: string | undefined;
  /** Raw IFF_* flags. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP); for a veth, its peer is up too. */
  lowerUp: boolean;
  operState: OperState;
  /** rtnetlink kind ("veth", "dummy", ...); undefined for physical and loopback devices. */
  kind: string | undefined;
  /** The peer's ifindex for a veth (IFLA_LINK); it is an index in `peerNetnsId`'s namespace when that is set. */
  peerIndex: number | undefined;
  /** The peer's namespace id as this namespace knows it, when the peer lives elsewhere. */
  peerNetnsId: number | undefined;
  /** Ifindex of the master (bridge, bond), if enslaved. */
  master: number | undefined;
  /** Largest GSO packet the device can segment (IFLA_TSO_MAX_SIZE; undefined on kernels before 5.19). */
  tsoMaxSize: number | undefined;
  /** Largest IPv4 GSO packet the stack builds for it, and GRO assembles on it (undefined before 6.3). */
  gsoIpv4MaxSize: number | undefined;
  groIpv4MaxSize: number | undefined;
  /** Transmit queues (IFLA_NUM_TX_QUEUES): above 1, the device's root qdisc is mq with one leaf per queue. */
  numTxQueues?: number;
}

/** Changes applied to a link in one request. */
export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  mac?: string;
  name?: string;
  /** IPv4 GSO/GRO packet size limits: above 65536 is BIG TCP; at most the device's `tsoMaxSize`. */
  gsoIpv4MaxSize?: number;
  groIpv4MaxSize?: number;
}

/** A veth pair; the peer can be created directly inside another namespace. */
export interface VethSpec {
  /** Name of the side created in this handle's namespace (e.g. "lxc1a2b3c"). */
  name: string;
  /** Name of the other side (e.g. "eth0"). */
  peerName: string;
  /** Namespace (name or path) that receives the peer; by default it stays beside `name`. */
  peerNetns?: string;
  /** MTU of both sides. */
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /**
   * Bring this side up at creation. The peer stays down: the kernel refuses IFF_UP for a veth
   * peer at creation, so it is brought up through a handle in its own namespace.
   */
  up?: boolean;
  /** No ARP on this side (routes into it need no neighbour resolution). */
  noArp?: boolean;
}

/**
 * A VXLAN device in external (collect_md) mode, as `ip link add NAME type vxlan external
 * dstport PORT`: no VNI or remote of its own, every packet's tunnel key comes from its metadata
 * (set by eBPF on transmit, read by eBPF on receive).
 */
export interface VxlanSpec {
  name: string;
  /** UDP port it listens on and sends to (8472 is Linux's and Cilium's, 4789 IANA's). */
  port: number;
  mtu?: number;
  mac?: string;
  /** No ARP on the device (routes into it need no neighbour resolution). */
  noArp?: boolean;
  up?: boolean;
}

const IFINFOMSG_SIZE = 16;
const IFNAMSIZ = 16;

/** Checks an interface name the way the kernel's dev_valid_name does. */
export function validateLinkName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new NetlinkInputError(field, 'expected a non-empty interface name');
  if (Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new NetlinkInputError(field, `"${name}" is longer than ${IFNAMSIZ - 1} bytes`);
  }
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) {
    throw new NetlinkInputError(field, `"${name}" is not a valid interface name (no "/", ":" or whitespace)`);
  }
  return name;
}

function validateRef(ref: unknown, field: string): LinkRef {
  if (typeof ref === 'number') {
    if (!Number.isInteger(ref) || ref <= 0 || ref > 0x7fffffff) {
      throw new NetlinkInputError(field, `${ref} is not a valid ifindex (a positive integer)`);
    }
    return ref;
  }
  return validateLinkName(ref, field);
}

export function validateMtu(mtu: unknown, field: string): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new NetlinkInputError(field, `${String(mtu)} is not a valid MTU (an integer 68..65535)`);
  }
  return mtu;
}

/** Kernel's GSO_MAX_SIZE: the largest GSO/GRO size a device can be given. */
export const MAX_GSO_SIZE = 524_280;

function validateGsoSize(size: unknown, field: string): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > MAX_GSO_SIZE) {
    throw new NetlinkInputError(field, `${String(size)} is not a valid GSO/GRO size (an integer 1..${MAX_GSO_SIZE})`);
  }
  return size;
}

const describe = (ref: LinkRef): string => (typeof ref === 'number' ? `ifindex ${ref}` : ref);

/**
 * A link message addressed to `ref`: by ifindex, or by name through IFLA_IFNAME (the kernel
 * resolves it, saving a lookup).
 */
function linkMessage(type: number, flags: number, ref: LinkRef | undefined, iff = 0, change = 0): MessageWriter {
  const w = new MessageWriter(type, flags).header(IFINFOMSG_SIZE, (h) => {
    h.writeUInt8(AF_UNSPEC, 0);
    h.writeInt32LE(typeof ref === 'number' ? ref : 0, 4);
    h.writeUInt32LE(iff, 8);
    h.writeUInt32LE(change, 12);
  });
  if (typeof ref === 'string') w.string(IFLA.IFNAME, ref);
  return w;
}

/** RTM_NEWLINK creating `name` of `kind` with flags `iff`, MTU and MAC; `data` writes its IFLA_INFO_DATA. */
function newLinkMessage(name: string, kind: string, o: { iff: number; mtu: number | undefined; mac: Uint8Array | undefined }, data: (w: MessageWriter) => void): MessageWriter {
  const w = linkMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, name, o.iff, o.iff);
  if (o.mtu !== undefined) w.u32(IFLA.MTU, o.mtu);
  if (o.mac) w.bytes(IFLA.ADDRESS, o.mac);
  w.nested(IFLA.LINKINFO, (li) => {
    li.string(IFLA_INFO.KIND, kind);
    li.nested(IFLA_INFO.DATA, data);
  });
  return w;
}

export function parseLink(msg: Message): Link {
  const p = familyHeader(msg, IFINFOMSG_SIZE, 'link');
  const flags = p.readUInt32LE(8);
  const attrs = parseAttrs(p, IFINFOMSG_SIZE);
  const index = p.readInt32LE(4);
  const macBytes = attrs.get(IFLA.ADDRESS);
  const info = attrs.get(IFLA.LINKINFO);
  const link = attrI32(attrs, IFLA.LINK);
  const master = attrU32(attrs, IFLA.MASTER);
  const peerNetnsId = attrI32(attrs, IFLA.LINK_NETNSID);
  return {
    index,
    name: attrString(attrs, IFLA.IFNAME) ?? '',
    mtu: attrU32(attrs, IFLA.MTU) ?? 0,
    mac: macBytes && macBytes.length > 0 ? formatMac(macBytes) : undefined,
    flags,
    up: (flags & IFF.UP) !== 0,
    lowerUp: (flags & IFF.LOWER_UP) !== 0,
    operState: OPER_STATES[attrU8(attrs, IFLA.OPERSTATE) ?? 0] ?? 'unknown',
    kind: info ? attrString(parseAttrs(info), IFLA_INFO.KIND) : undefined,
    // IFLA_LINK equals the link's own index for devices without a lower/peer device, but a
    // peer in another namespace may well carry the same number there.
    peerIndex: link !== undefined && link > 0 && (link !== index || peerNetnsId !== undefined) ? link : undefined,
    peerNetnsId,
    master: master ? master : undefined,
    tsoMaxSize: attrU32(attrs, IFLA.TSO_MAX_SIZE),
    gsoIpv4MaxSize: attrU32(attrs, IFLA.GSO_IPV4_MAX_SIZE),
    groIpv4MaxSize: attrU32(attrs, IFLA.GRO_IPV4_MAX_SIZE),
    numTxQueues: attrU32(attrs, IFLA.NUM_TX_QUEUES),
  };
}

/** The link `ref`; rejects with ENODEV if there is none. */
export async function getLink(sock: RouteSocket, ref: LinkRef): Promise<Link> {
  validateRef(ref, 'link');
  const w = linkMessage(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, ref).u32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  const [msg] = await sock.request(w, 'link get', describe(ref));
  if (!msg) throw new NetlinkError('link get', describe(ref), 19, 'ENODEV', 'No such device');
  return parseLink(msg);
}

/** The link `ref`, or undefined if there is none. */
export async function findLink(sock: RouteSocket, ref: LinkRef): Promise<Link | undefined> {
  try {
    return await getLink(sock, ref);
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENODEV') return undefined;
    throw err;
  }
}

export async function listLinks(sock: RouteSocket): Promise<Link[]> {
  const w = linkMessage(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP, undefined).u32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return (await sock.dump(w, 'link list', '')).filter((m) => m.type === RTM.NEWLINK).map(parseLink);
}

/** The ifindex of `ref` (a lookup only when it is a name). */
export async function linkIndex(sock: RouteSocket, ref: LinkRef, field = 'dev'): Promise<number> {
  validateRef(ref, field);
  return typeof ref === 'number' ? ref : (await getLink(sock, ref)).index;
}

export async function addVeth(sock: RouteSocket, spec: VethSpec): Promise<Link> {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('veth', 'expected an object');
  const name = validateLinkName(spec.name, 'veth.name');
  const peerName = validateLinkName(spec.peerName, 'veth.peerName');
  const mtu = spec.mtu === undefined ? undefined : validateMtu(spec.mtu, 'veth.mtu');
  const mac = spec.mac === undefined ? undefined : parseMac(spec.mac, 'veth.mac');
  const peerMac = spec.peerMac === undefined ? undefined : parseMac(spec.peerMac, 'veth.peerMac');
  const peerNetns = spec.peerNetns === undefined ? undefined : resolveNetnsPath(spec.peerNetns, 'veth.peerNetns');
  const iff = (spec.up ? IFF.UP : 0) | (spec.noArp ? IFF.NOARP : 0);

  const send = async (netnsFd: number | undefined): Promise<void> => {
    const w = newLinkMessage(name, 'veth', { iff, mtu, mac }, (data) => {
      // The peer is described by a whole ifinfomsg plus attributes inside VETH_INFO_PEER.
      data.nested(VETH_INFO_PEER, (peer) => {
        peer.header(IFINFOMSG_SIZE, () => undefined);
        peer.string(IFLA.IFNAME, peerName);
        if (mtu !== undefined) peer.u32(IFLA.MTU, mtu);
        if (peerMac) peer.bytes(IFLA.ADDRESS, peerMac);
        if (netnsFd !== undefined) peer.u32(IFLA.NET_NS_FD, netnsFd);
      });
    });
    await sock.request(w, 'link add veth', name);
  };
  if (peerNetns) await withNetnsFd(peerNetns, 'link add veth', send);
  else await send(undefined);
  return getLink(sock, name);
}

export async function addVxlan(sock: RouteSocket, spec: VxlanSpec): Promise<Link> {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('vxlan', 'expected an object');
  const name = validateLinkName(spec.name, 'vxlan.name');
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new NetlinkInputError('vxlan.port', `${spec.port} is not a UDP port (1..65535)`);
  const mtu = spec.mtu === undefined ? undefined : validateMtu(spec.mtu, 'vxlan.mtu');
  const mac = spec.mac === undefined ? undefined : parseMac(spec.mac, 'vxlan.mac');
  const iff = (spec.up ? IFF.UP : 0) | (spec.noArp ? IFF.NOARP : 0);
  const w = newLinkMessage(name, 'vxlan', { iff, mtu, mac }, (data) => {
    data.u8(IFLA_VXLAN.COLLECT_METADATA, 1);
    // Tunnel keys come from eBPF: learning source MACs into the FDB would only cost time.
    data.u8(IFLA_VXLAN.LEARNING, 0);
    // The port is the one attribute in network byte order.
    data.bytes(IFLA_VXLAN.PORT, Uint8Array.of(spec.port >> 8, spec.port & 0xff));
  });
  await sock.request(w, 'link add vxlan', name);
  return getLink(sock, name);
}

/** Applies `changes` to link `ref` in one request. A rename needs the ifindex, looked up if a name was given. */
export async function setLink(sock: RouteSocket, ref: LinkRef, changes: LinkChanges): Promise<void> {
  validateRef(ref, 'link');
  const mtu = changes.mtu === undefined ? undefined : validateMtu(changes.mtu, 'mtu');
  const mac = changes.mac === undefined ? undefined : parseMac(changes.mac, 'mac');
  const newName = changes.name === undefined ? undefined : validateLinkName(changes.name, 'name');
  const gso = changes.gsoIpv4MaxSize === undefined ? undefined : validateGsoSize(changes.gsoIpv4MaxSize, 'gsoIpv4MaxSize');
  const gro = changes.groIpv4MaxSize === undefined ? undefined : validateGsoSize(changes.groIpv4MaxSize, 'groIpv4MaxSize');
  const target = newName !== undefined && typeof ref === 'string' ? await linkIndex(sock, ref, 'link') : ref;
  const iff = changes.up === undefined ? 0 : changes.up ? IFF.UP : 0;
  const change = changes.up === undefined ? 0 : IFF.UP;
  const w = linkMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, target, iff, change);
  if (mtu !== undefined) w.u32(IFLA.MTU, mtu);
  if (mac) w.bytes(IFLA.ADDRESS, mac);
  if (newName !== undefined) w.string(IFLA.IFNAME, newName);
  if (gso !== undefined) w.u32(IFLA.GSO_IPV4_MAX_SIZE, gso);
  if (gro !== undefined) w.u32(IFLA.GRO_IPV4_MAX_SIZE, gro);
  const what = [
    changes.up === undefined ? '' : changes.up ? 'up' : 'down',
    mtu === undefined ? '' : `mtu ${mtu}`,
    mac ? `address ${changes.mac}` : '',
    newName === undefined ? '' : `name ${newName}`,
    gso === undefined ? '' : `gso_ipv4_max_size ${gso}`,
    gro === undefined ? '' : `gro_ipv4_max_size ${gro}`,
  ].filter(Boolean);
  await sock.request(w, `link set${what.length ? ` (${what.join(', ')})` : ''}`, describe(ref));
}

/** Moves link `ref` into the namespace `netns` (name or path), optionally renaming it on the way. */
export async function moveLink(sock: RouteSocket, ref: LinkRef, netns: string, newName?: string): Promise<void> {
  validateRef(ref, 'link');
  const path = resolveNetnsPath(netns, 'netns');
  const name = newName === undefined ? undefined : validateLinkName(newName, 'newName');
  const target = name !== undefined && typeof ref === 'string' ? await linkIndex(sock, ref, 'link') : ref;
  await withNetnsFd(path, 'link set netns', async (fd) => {
    const w = linkMessage(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, target).u32(IFLA.NET_NS_FD, fd);
    if (name !== undefined) w.string(IFLA.IFNAME, name);
    await sock.request(w, `link set netns ${path}`, describe(ref));
  });
}

/** Deletes link `ref` (for a veth, both sides go). */
export async function deleteLink(sock: RouteSocket, ref: LinkRef): Promise<void> {
  validateRef(ref, 'link');
  await sock.request(linkMessage(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, ref), 'link delete', describe(ref));
}
