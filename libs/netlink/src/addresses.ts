import { type IpFamily, addressFamily, parseCidr } from './addr.js';
import { AF_INET, AF_INET6, AF_UNSPEC, IFA, IFA_F, NLM_F, RTM } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { type LinkRef, linkIndex } from './links.js';
import { type Scope, parseScope, scopeName } from './scope.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrIp, attrString, familyHeader, parseAttrs } from './wire.js';

/** An address assigned to a link. */
export interface Address {
  ifindex: number;
  family: IpFamily;
  /** The address, canonical ("10.0.0.2", "fd00::2"). */
  address: string;
  prefixLength: number;
  /** "10.0.0.2/24". */
  cidr: string;
  scope: Scope;
  /** IPv4 label (usually the link's name). */
  label: string | undefined;
}

export interface AddressSpec {
  /** The link that gets the address. */
  dev: LinkRef;
  /** Address with prefix length, e.g. "10.0.0.2/24"; a bare address means /32 or /128. */
  address: string;
  /** Defaults to "universe" (global). */
  scope?: Scope;
  /** IPv6: skip duplicate address detection, so the address is usable at once. */
  noDad?: boolean;
  /** Do not install the prefix route the kernel otherwise adds for the subnet. */
  noPrefixRoute?: boolean;
}

const IFADDRMSG_SIZE = 8;

function addressMessage(type: number, flags: number, spec: AddressSpec, index: number): MessageWriter {
  const cidr = parseCidr(spec.address, 'address');
  const scope = spec.scope === undefined ? 0 : parseScope(spec.scope, 'scope');
  let extraFlags = 0;
  if (spec.noDad) extraFlags |= IFA_F.NODAD;
  if (spec.noPrefixRoute) extraFlags |= IFA_F.NOPREFIXROUTE;
  const w = new MessageWriter(type, flags).header(IFADDRMSG_SIZE, (h) => {
    h.writeUInt8(addressFamily(cidr.family), 0);
    h.writeUInt8(cidr.prefixLength, 1);
    h.writeUInt8(extraFlags & 0xff, 2);
    h.writeUInt8(scope, 3);
    h.writeUInt32LE(index, 4);
  });
  // Local and "address" (the peer on point-to-point links) are the same for ordinary links.
  w.bytes(IFA.LOCAL, cidr.bytes).bytes(IFA.ADDRESS, cidr.bytes);
  if (extraFlags > 0xff) w.u32(IFA.FLAGS, extraFlags);
  return w;
}

function checkSpec(spec: AddressSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('address', 'expected an object');
  parseCidr(spec.address, 'address');
}

export async function addAddress(sock: RouteSocket, spec: AddressSpec, replace = false): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  const flags = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL);
  await sock.request(addressMessage(RTM.NEWADDR, flags, spec, index), replace ? 'address replace' : 'address add', `${spec.address} dev ${spec.dev}`);
}

export async function deleteAddress(sock: RouteSocket, spec: AddressSpec): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  await sock.request(addressMessage(RTM.DELADDR, NLM_F.REQUEST | NLM_F.ACK, spec, index), 'address delete', `${spec.address} dev ${spec.dev}`);
}

export function parseAddress(msg: Message): Address | undefined {
  const p = familyHeader(msg, IFADDRMSG_SIZE, 'address');
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const prefixLength = p.readUInt8(1);
  const attrs = parseAttrs(p, IFADDRMSG_SIZE);
  const address = attrIp(attrs, IFA.LOCAL, 'address') ?? attrIp(attrs, IFA.ADDRESS, 'address');
  if (!address) return undefined;
  return {
    ifindex: p.readUInt32LE(4),
    family: family === AF_INET ? 4 : 6,
    address,
    prefixLength,
    cidr: `${address}/${prefixLength}`,
    scope: scopeName(p.readUInt8(3)),
    label: attrString(attrs, IFA.LABEL),
  };
}

/** Addresses of this namespace, optionally of one link and/or one family. */
export async function listAddresses(
  sock: RouteSocket,
  filter: { dev?: LinkRef; family?: IpFamily } = {},
): Promise<Address[]> {
  const index = filter.dev === undefined ? undefined : await linkIndex(sock, filter.dev);
  const family = filter.family === undefined ? AF_UNSPEC : addressFamily(filter.family);
  const w = new MessageWriter(RTM.GETADDR, NLM_F.REQUEST | NLM_F.DUMP).header(IFADDRMSG_SIZE, (h) => h.writeUInt8(family, 0));
  const all = (await sock.dump(w, 'address list', filter.dev === undefined ? '' : `dev ${filter.dev}`))
    .filter((m) => m.type === RTM.NEWADDR)
    .map(parseAddress)
    .filter((a): a is Address => a !== undefined);
  return all.filter(
    (a) => (index === undefined || a.ifindex === index) && (filter.family === undefined || a.family === filter.family),
  );
}
