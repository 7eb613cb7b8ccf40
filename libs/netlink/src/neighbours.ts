import { type IpFamily, addressFamily, formatMac, parseIp, parseMac } from './addr.js';
import { AF_INET, AF_INET6, AF_UNSPEC, NDA, NLM_F, NUD, RTM } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { type LinkRef, linkIndex } from './links.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrIp, familyHeader, parseAttrs } from './wire.js';

/** Neighbour (ARP / NDP) entry states, NUD_* in the kernel. */
export type NeighbourState =
  | 'incomplete'
  | 'reachable'
  | 'stale'
  | 'delay'
  | 'probe'
  | 'failed'
  | 'noarp'
  | 'permanent'
  | 'none';

const STATES: Record<Exclude<NeighbourState, 'none'>, number> = {
  incomplete: NUD.INCOMPLETE,
  reachable: NUD.REACHABLE,
  stale: NUD.STALE,
  delay: NUD.DELAY,
  probe: NUD.PROBE,
  failed: NUD.FAILED,
  noarp: NUD.NOARP,
  permanent: NUD.PERMANENT,
};

export interface NeighbourSpec {
  dev: LinkRef;
  /** The neighbour's IP address. */
  address: string;
  /** Its MAC, "aa:bb:cc:dd:ee:ff"; required to add or replace. */
  mac?: string;
  /** Default "permanent". */
  state?: Exclude<NeighbourState, 'none'>;
}

export interface Neighbour {
  ifindex: number;
  family: IpFamily;
  address: string;
  mac: string | undefined;
  state: NeighbourState;
}

const NDMSG_SIZE = 12;

function neighbourMessage(type: number, flags: number, spec: NeighbourSpec, index: number): MessageWriter {
  const ip = parseIp(spec.address, 'address');
  const mac = spec.mac === undefined ? undefined : parseMac(spec.mac, 'mac');
  if (type === RTM.NEWNEIGH && !mac) throw new NetlinkInputError('mac', 'required to add a neighbour entry');
  const state = spec.state ?? 'permanent';
  if (!(state in STATES)) throw new NetlinkInputError('state', `${JSON.stringify(state)} is not one of ${Object.keys(STATES).join(', ')}`);
  const w = new MessageWriter(type, flags).header(NDMSG_SIZE, (h) => {
    h.writeUInt8(addressFamily(ip.family), 0);
    h.writeInt32LE(index, 4);
    h.writeUInt16LE(type === RTM.NEWNEIGH ? STATES[state] : 0, 8);
  });
  w.bytes(NDA.DST, ip.bytes);
  if (mac) w.bytes(NDA.LLADDR, mac);
  return w;
}

const describe = (spec: NeighbourSpec): string => `${spec.address} dev ${spec.dev}`;

function checkSpec(spec: NeighbourSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('neighbour', 'expected an object');
  parseIp(spec.address, 'address');
}

export async function addNeighbour(sock: RouteSocket, spec: NeighbourSpec, replace = false): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  const flags = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL);
  await sock.request(neighbourMessage(RTM.NEWNEIGH, flags, spec, index), replace ? 'neighbour replace' : 'neighbour add', describe(spec));
}

export async function deleteNeighbour(sock: RouteSocket, spec: NeighbourSpec): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  await sock.request(neighbourMessage(RTM.DELNEIGH, NLM_F.REQUEST | NLM_F.ACK, spec, index), 'neighbour delete', describe(spec));
}

function stateName(state: number): NeighbourState {
  // Permanent first: it may come combined with other bits (e.g. noarp).
  if (state & NUD.PERMANENT) return 'permanent';
  const found = (Object.keys(STATES) as (keyof typeof STATES)[]).find((k) => (STATES[k] & state) !== 0);
  return found ?? 'none';
}

export function parseNeighbour(msg: Message): Neighbour | undefined {
  const p = familyHeader(msg, NDMSG_SIZE, 'neighbour');
  const af = p.readUInt8(0);
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const attrs = parseAttrs(p, NDMSG_SIZE);
  const dst = attrIp(attrs, NDA.DST, 'neighbour');
  if (!dst) return undefined;
  const mac = attrs.get(NDA.LLADDR);
  return {
    ifindex: p.readInt32LE(4),
    family: af === AF_INET ? 4 : 6,
    address: dst,
    mac: mac && mac.length > 0 ? formatMac(mac) : undefined,
    state: stateName(p.readUInt16LE(8)),
  };
}

/** Neighbour entries, optionally of one link and/or family. */
export async function listNeighbours(
  sock: RouteSocket,
  filter: { dev?: LinkRef; family?: IpFamily } = {},
): Promise<Neighbour[]> {
  const index = filter.dev === undefined ? undefined : await linkIndex(sock, filter.dev);
  const family = filter.family === undefined ? AF_UNSPEC : addressFamily(filter.family);
  const w = new MessageWriter(RTM.GETNEIGH, NLM_F.REQUEST | NLM_F.DUMP).header(NDMSG_SIZE, (h) => h.writeUInt8(family, 0));
  return (await sock.dump(w, 'neighbour list', filter.dev === undefined ? '' : `dev ${filter.dev}`))
    .filter((m) => m.type === RTM.NEWNEIGH)
    .map(parseNeighbour)
    .filter((n): n is Neighbour => n !== undefined)
    .filter((n) => (index === undefined || n.ifindex === index) && (filter.family === undefined || n.family === filter.family));
}
