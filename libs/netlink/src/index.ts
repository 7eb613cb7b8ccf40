/**
 * @cilia/netlink: typed rtnetlink — network namespaces, links (veth), addresses, routes,
 * neighbours and sysctls — over a small Node-API addon, with no `ip` process per operation.
 */
export type { IpFamily } from './addr.js';
export type { Address, AddressSpec } from './addresses.js';
export { NetlinkError, NetlinkInputError, NetlinkParseError } from './errors.js';
export type { NetlinkHandle } from './handle.js';
export { type Link, type LinkChanges, type LinkRef, MAX_GSO_SIZE, type OperState, type VethSpec, type VxlanSpec } from './links.js';
export type { Neighbour, NeighbourSpec, NeighbourState } from './neighbours.js';
export { createNetns, deleteNetns, listNetns, netnsCookie, netnsPath, openNetlink, openNetns } from './netns.js';
export { type Qdisc, type QdiscSpec, tcHandle } from './qdiscs.js';
export type { Route, RouteSpec, RouteType } from './routes.js';
export type { FwmarkRule, FwmarkRuleSpec } from './rules.js';
export { openTcpSocket, type TcpSocketOptions } from './tcp.js';
export type { Scope } from './scope.js';
export { type SysctlOptions, getSysctl, setSysctl } from './sysctl.js';
