import { type IpFamily, type ParsedIp, addressFamily, parseCidr, parseIp } from './addr.js';
import {
  AF_INET,
  AF_INET6,
  NLM_F,
  RTA,
  RTAX_MTU,
  RTM,
  RTM_F_CLONED,
  RTN,
  RTNH_F_ONLINK,
  RTPROT_BOOT,
  RT_SCOPE,
  RT_TABLE_MAIN,
} from './constants.js';
import { NetlinkInputError } from './errors.js';
import { type LinkRef, linkIndex, validateMtu } from './links.js';
import { type Scope, parseScope, scopeName } from './scope.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrIp, attrU32, familyHeader, parseAttrs } from './wire.js';

/** Route types this API speaks; others are reported by number. */
export type RouteType = 'unicast' | 'local' | 'broadcast' | 'anycast' | 'multicast' | 'blackhole' | 'unreachable' | 'prohibit';

const TYPES: Record<RouteType, number> = {
  unicast: RTN.UNICAST,
  local: RTN.LOCAL,
  broadcast: RTN.BROADCAST,
  anycast: RTN.ANYCAST,
  multicast: RTN.MULTICAST,
  blackhole: RTN.BLACKHOLE,
  unreachable: RTN.UNREACHABLE,
  prohibit: RTN.PROHIBIT,
};

export interface RouteSpec {
  /** Destination CIDR ("10.0.0.0/24", "10.0.1.5/32", "fd00::/64") or "default". */
  dst: string;
  /** Next hop. */
  gateway?: string;
  /** Output link. */
  dev?: LinkRef;
  /** Defaults to "link" for routes without a gateway, as `ip route` does, else "universe". */
  scope?: Scope;
  /** Preferred source address. */
  src?: string;
  /** Routing table; default main (254). */
  table?: number;
  /** Use the gateway even though no route says it is on the link (the pod's default route via a /32). */
  onlink?: boolean;
  /** Route metric (priority). */
  metric?: number;
  /** Path MTU for this route (RTAX_MTU). */
  mtu?: number;
  /** Default "unicast". */
  type?: RouteType;
  /** Origin marker; default 3 ("boot"), as `ip route` uses. */
  protocol?: number;
  /** Family for dst "default" when neither gateway nor src implies it; default 4. */
  family?: IpFamily;
}

/** A route as the kernel reports it. */
export interface Route {
  family: IpFamily;
  /** "default" or a canonical CIDR. */
  dst: string;
  gateway: string | undefined;
  /** Output link's ifindex. */
  ifindex: number | undefined;
  scope: Scope;
  src: string | undefined;
  table: number;
  protocol: number;
  type: RouteType | number;
  onlink: boolean;
  metric: number | undefined;
  mtu: number | undefined;
}

const RTMSG_SIZE = 12;

interface Resolved {
  family: IpFamily;
  dst: ParsedIp & { prefixLength: number };
  gateway: ParsedIp | undefined;
  src: ParsedIp | undefined;
}

function resolve(spec: RouteSpec): Resolved {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('route', 'expected an object');
  const gateway = spec.gateway === undefined ? undefined : parseIp(spec.gateway, 'gateway');
  const src = spec.src === undefined ? undefined : parseIp(spec.src, 'src');
  let dst;
  if (spec.dst === 'default') {
    const family = gateway?.family ?? src?.family ?? spec.family ?? 4;
    dst = { family, bytes: new Uint8Array(family === 4 ? 4 : 16), prefixLength: 0 };
  } else {
    dst = parseCidr(spec.dst, 'dst', { network: true });
  }
  if (gateway && gateway.family !== dst.family) {
    throw new NetlinkInputError('gateway', `${spec.gateway} is IPv${gateway.family} but dst ${spec.dst} is IPv${dst.family}`);
  }
  if (src && src.family !== dst.family) {
    throw new NetlinkInputError('src', `${spec.src} is IPv${src.family} but dst ${spec.dst} is IPv${dst.family}`);
  }
  if (spec.table !== undefined && (!Number.isInteger(spec.table) || spec.table < 1 || spec.table > 0xffffffff)) {
    throw new NetlinkInputError('table', `${spec.table} is not a routing table id (1..2^32-1)`);
  }
  if (spec.metric !== undefined && (!Number.isInteger(spec.metric) || spec.metric < 0 || spec.metric > 0xffffffff)) {
    throw new NetlinkInputError('metric', `${spec.metric} is not a metric (0..2^32-1)`);
  }
  if (spec.type !== undefined && !(spec.type in TYPES)) {
    throw new NetlinkInputError('type', `${JSON.stringify(spec.type)} is not one of ${Object.keys(TYPES).join(', ')}`);
  }
  if (spec.mtu !== undefined) validateMtu(spec.mtu, 'mtu');
  return { family: dst.family, dst, gateway, src };
}

function describe(spec: RouteSpec): string {
  const parts = [spec.dst];
  if (spec.gateway) parts.push(`via ${spec.gateway}`);
  if (spec.dev !== undefined) parts.push(`dev ${spec.dev}`);
  if (spec.table !== undefined) parts.push(`table ${spec.table}`);
  return parts.join(' ');
}

function routeMessage(type: number, flags: number, spec: RouteSpec, r: Resolved, index: number | undefined): MessageWriter {
  const deleting = type === RTM.DELROUTE;
  const table = spec.table ?? RT_TABLE_MAIN;
  // For a delete, unset fields match anything: scope "nowhere", type and protocol 0.
  const scope = spec.scope !== undefined ? parseScope(spec.scope, 'scope') : deleting ? RT_SCOPE.NOWHERE : r.gateway ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK;
  const routeType = spec.type !== undefined ? TYPES[spec.type] : deleting ? RTN.UNSPEC : RTN.UNICAST;
  const protocol = spec.protocol ?? (deleting ? 0 : RTPROT_BOOT);
  const w = new MessageWriter(type, flags).header(RTMSG_SIZE, (h) => {
    h.writeUInt8(addressFamily(r.family), 0);
    h.writeUInt8(r.dst.prefixLength, 1);
    h.writeUInt8(table < 256 ? table : 0, 4);
    h.writeUInt8(protocol, 5);
    h.writeUInt8(scope, 6);
    h.writeUInt8(routeType, 7);
    h.writeUInt32LE(spec.onlink ? RTNH_F_ONLINK : 0, 8);
  });
  w.u32(RTA.TABLE, table);
  if (r.dst.prefixLength > 0) w.bytes(RTA.DST, r.dst.bytes);
  if (r.gateway) w.bytes(RTA.GATEWAY, r.gateway.bytes);
  if (r.src) w.bytes(RTA.PREFSRC, r.src.bytes);
  if (index !== undefined) w.u32(RTA.OIF, index);
  if (spec.metric !== undefined) w.u32(RTA.PRIORITY, spec.metric);
  if (spec.mtu !== undefined) w.nested(RTA.METRICS, (m) => m.u32(RTAX_MTU, spec.mtu!));
  return w;
}

async function send(sock: RouteSocket, type: number, flags: number, spec: RouteSpec, operation: string): Promise<void> {
  const r = resolve(spec);
  const index = spec.dev === undefined ? undefined : await linkIndex(sock, spec.dev);
  await sock.request(routeMessage(type, flags, spec, r, index), operation, describe(spec));
}

export function addRoute(sock: RouteSocket, spec: RouteSpec): Promise<void> {
  return send(sock, RTM.NEWROUTE, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, spec, 'route add');
}

/** Adds the route or replaces the one with the same destination, table and metric. */
export function replaceRoute(sock: RouteSocket, spec: RouteSpec): Promise<void> {
  return send(sock, RTM.NEWROUTE, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE, spec, 'route replace');
}

/** Deletes the route matching `spec` (fields left out match any value). */
export function deleteRoute(sock: RouteSocket, spec: RouteSpec): Promise<void> {
  return send(sock, RTM.DELROUTE, NLM_F.REQUEST | NLM_F.ACK, spec, 'route delete');
}

function typeName(type: number): RouteType | number {
  const found = (Object.keys(TYPES) as RouteType[]).find((k) => TYPES[k] === type);
  return found ?? type;
}

export function parseRoute(msg: Message): Route | undefined {
  const p = familyHeader(msg, RTMSG_SIZE, 'route');
  const af = p.readUInt8(0);
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const flags = p.readUInt32LE(8);
  if (flags & RTM_F_CLONED) return undefined;
  const attrs = parseAttrs(p, RTMSG_SIZE);
  const dstLen = p.readUInt8(1);
  const dst = attrIp(attrs, RTA.DST, 'route');
  const gateway = attrIp(attrs, RTA.GATEWAY, 'route');
  const src = attrIp(attrs, RTA.PREFSRC, 'route');
  const metrics = attrs.get(RTA.METRICS);
  return {
    family: af === AF_INET ? 4 : 6,
    dst: dstLen === 0 || !dst ? 'default' : `${dst}/${dstLen}`,
    gateway,
    ifindex: attrU32(attrs, RTA.OIF),
    scope: scopeName(p.readUInt8(6)),
    src,
    table: attrU32(attrs, RTA.TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    type: typeName(p.readUInt8(7)),
    onlink: (flags & RTNH_F_ONLINK) !== 0,
    metric: attrU32(attrs, RTA.PRIORITY),
    mtu: metrics ? attrU32(parseAttrs(metrics), RTAX_MTU) : undefined,
  };
}

/** Routes of one family in one table (default: IPv4, main table); `table: 'all'` lists every table. */
export async function listRoutes(
  sock: RouteSocket,
  filter: { family?: IpFamily; table?: number | 'all'; dev?: LinkRef } = {},
): Promise<Route[]> {
  const family = filter.family ?? 4;
  if (family !== 4 && family !== 6) throw new NetlinkInputError('family', `${String(family)} is not 4 or 6`);
  const table = filter.table ?? RT_TABLE_MAIN;
  const index = filter.dev === undefined ? undefined : await linkIndex(sock, filter.dev);
  const w = new MessageWriter(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP).header(RTMSG_SIZE, (h) =>
    h.writeUInt8(addressFamily(family), 0),
  );
  return (await sock.dump(w, 'route list', `table ${table}`))
    .filter((m) => m.type === RTM.NEWROUTE)
    .map(parseRoute)
    .filter((r): r is Route => r !== undefined)
    .filter((r) => (table === 'all' || r.table === table) && (index === undefined || r.ifindex === index));
}
