import type { IpFamily } from './addr.js';
import { type Address, type AddressSpec, addAddress, deleteAddress, listAddresses } from './addresses.js';
import {
  type Link,
  type LinkChanges,
  type LinkRef,
  type VethSpec,
  type VxlanSpec,
  addVeth,
  addVxlan,
  deleteLink,
  findLink,
  getLink,
  listLinks,
  moveLink,
  setLink,
} from './links.js';
import {
  type Neighbour,
  type NeighbourSpec,
  addNeighbour,
  deleteNeighbour,
  listNeighbours,
} from './neighbours.js';
import { type Route, type RouteSpec, addRoute, deleteRoute, listRoutes, replaceRoute } from './routes.js';
import { type Qdisc, type QdiscSpec, addQdisc, deleteQdisc, listQdiscs } from './qdiscs.js';
import { type FwmarkRule, type FwmarkRuleSpec, deleteFwmarkRule, ensureFwmarkRule, listFwmarkRules } from './rules.js';
import { RouteSocket } from './socket.js';
import { getSysctl, setSysctl } from './sysctl.js';

/**
 * An rtnetlink connection bound to one network namespace: every call acts in that namespace,
 * whichever namespace the agent itself runs in. Calls on one handle run one after another;
 * use several handles for parallel work. Close it when done.
 */
export class NetlinkHandle {
  private constructor(
    private readonly sock: RouteSocket,
    /** Path of the namespace, or undefined for the process's own. */
    readonly netns: string | undefined,
  ) {}

  /** @internal use openNetlink() / openNetns(). */
  static async open(netnsPath: string | undefined): Promise<NetlinkHandle> {
    return new NetlinkHandle(await RouteSocket.open(netnsPath), netnsPath);
  }

  // ---- links

  listLinks(): Promise<Link[]> {
    return listLinks(this.sock);
  }

  /** Rejects with a NetlinkError (ENODEV) when there is no such link. */
  getLink(ref: LinkRef): Promise<Link> {
    return getLink(this.sock, ref);
  }

  /** Resolves undefined when there is no such link. */
  findLink(ref: LinkRef): Promise<Link | undefined> {
    return findLink(this.sock, ref);
  }

  /** Creates a veth pair; `peerNetns` puts the peer straight into another namespace. Resolves with the local side. */
  addVeth(spec: VethSpec): Promise<Link> {
    return addVeth(this.sock, spec);
  }

  /** Creates a VXLAN device in external (collect_md) mode. Resolves with the link. */
  addVxlan(spec: VxlanSpec): Promise<Link> {
    return addVxlan(this.sock, spec);
  }

  /** Applies several changes (up, MTU, MAC, name) in one request. */
  setLink(ref: LinkRef, changes: LinkChanges): Promise<void> {
    return setLink(this.sock, ref, changes);
  }

  setLinkUp(ref: LinkRef): Promise<void> {
    return setLink(this.sock, ref, { up: true });
  }

  setLinkDown(ref: LinkRef): Promise<void> {
    return setLink(this.sock, ref, { up: false });
  }

  setLinkMtu(ref: LinkRef, mtu: number): Promise<void> {
    return setLink(this.sock, ref, { mtu });
  }

  setLinkMac(ref: LinkRef, mac: string): Promise<void> {
    return setLink(this.sock, ref, { mac });
  }

  renameLink(ref: LinkRef, name: string): Promise<void> {
    return setLink(this.sock, ref, { name });
  }

  /** Moves a link into another namespace (name or path), optionally renaming it there. */
  moveLinkToNetns(ref: LinkRef, netns: string, newName?: string): Promise<void> {
    return moveLink(this.sock, ref, netns, newName);
  }

  deleteLink(ref: LinkRef): Promise<void> {
    return deleteLink(this.sock, ref);
  }

  // ---- addresses

  addAddress(spec: AddressSpec): Promise<void> {
    return addAddress(this.sock, spec);
  }

  replaceAddress(spec: AddressSpec): Promise<void> {
    return addAddress(this.sock, spec, true);
  }

  deleteAddress(spec: AddressSpec): Promise<void> {
    return deleteAddress(this.sock, spec);
  }

  listAddresses(filter?: { dev?: LinkRef; family?: IpFamily }): Promise<Address[]> {
    return listAddresses(this.sock, filter);
  }

  // ---- routes

  addRoute(spec: RouteSpec): Promise<void> {
    return addRoute(this.sock, spec);
  }

  replaceRoute(spec: RouteSpec): Promise<void> {
    return replaceRoute(this.sock, spec);
  }

  deleteRoute(spec: RouteSpec): Promise<void> {
    return deleteRoute(this.sock, spec);
  }

  /** Routes of one family (default IPv4) in one table (default main, or 'all'). */
  listRoutes(filter?: { family?: IpFamily; table?: number | 'all'; dev?: LinkRef }): Promise<Route[]> {
    return listRoutes(this.sock, filter);
  }

  // ---- policy routing rules

  /** Adds an IPv4 fwmark rule unless the same rule is there already. */
  ensureFwmarkRule(spec: FwmarkRuleSpec): Promise<void> {
    return ensureFwmarkRule(this.sock, spec);
  }

  deleteFwmarkRule(spec: FwmarkRuleSpec): Promise<void> {
    return deleteFwmarkRule(this.sock, spec);
  }

  listFwmarkRules(): Promise<FwmarkRule[]> {
    return listFwmarkRules(this.sock);
  }

  // ---- neighbours

  /** Adds a neighbour entry (permanent unless `state` says otherwise). */
  addNeighbour(spec: NeighbourSpec): Promise<void> {
    return addNeighbour(this.sock, spec);
  }

  replaceNeighbour(spec: NeighbourSpec): Promise<void> {
    return addNeighbour(this.sock, spec, true);
  }

  deleteNeighbour(spec: NeighbourSpec): Promise<void> {
    return deleteNeighbour(this.sock, spec);
  }

  listNeighbours(filter?: { dev?: LinkRef; family?: IpFamily }): Promise<Neighbour[]> {
    return listNeighbours(this.sock, filter);
  }

  // ---- qdiscs

  /** Puts a qdisc (default options) on a link; ENOENT when the kernel lacks its kind. */
  addQdisc(spec: QdiscSpec): Promise<void> {
    return addQdisc(this.sock, spec);
  }

  replaceQdisc(spec: QdiscSpec): Promise<void> {
    return addQdisc(this.sock, spec, true);
  }

  deleteQdisc(spec: QdiscSpec): Promise<void> {
    return deleteQdisc(this.sock, spec);
  }

  listQdiscs(filter?: { dev?: LinkRef }): Promise<Qdisc[]> {
    return listQdiscs(this.sock, filter);
  }

  // ---- sysctls of this namespace

  setSysctl(key: string, value: string | number): Promise<void> {
    return setSysctl(key, value, this.netns === undefined ? {} : { netns: this.netns });
  }

  getSysctl(key: string): Promise<string> {
    return getSysctl(key, this.netns === undefined ? {} : { netns: this.netns });
  }

  /** Closes the socket after calls already made have finished. */
  close(): Promise<void> {
    return this.sock.close();
  }
}
