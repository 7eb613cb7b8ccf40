import type { Encapsulation, Logger, NodeInfo } from '@cilia/core';
import { openNetlink, type NetlinkHandle, type RouteSpec } from '@cilia/netlink';

/** `rtm_protocol` of the routes Cilia adds towards other nodes (unassigned in rt_protos): `ip route show proto 200`. */
export const NODE_ROUTE_PROTOCOL = 200;

/** What {@link NodeRouteTable} needs. */
export interface NodeRouteTableOptions {
  readonly logger: Logger;
  /** Netlink handle in the node's namespace; default: the agent's own namespace. */
  readonly netlink?: () => Promise<NetlinkHandle>;
}

/**
 * The routes towards each other node (its pod CIDRs through its address, or through a tunnel
 * device), kept per node: `set` installs a node's routes with replace semantics and removes the
 * ones it no longer has, `remove` takes all of them away when the node leaves. Every route is
 * marked with {@link NODE_ROUTE_PROTOCOL}.
 */
export class NodeRouteTable {
  readonly #log: Logger;
  readonly #open: () => Promise<NetlinkHandle>;
  #handle?: Promise<NetlinkHandle>;
  readonly #routes = new Map<string, RouteSpec[]>();

  constructor(options: NodeRouteTableOptions) {
    this.#log = options.logger;
    this.#open = options.netlink ?? openNetlink;
  }

  /** Makes `routes` the routes of `node`. */
  async set(node: string, routes: readonly RouteSpec[]): Promise<void> {
    const nl = await this.netlink();
    const wanted = routes.map((r) => ({ ...r, protocol: NODE_ROUTE_PROTOCOL }));
    for (const route of wanted) await nl.replaceRoute(route);
    const keep = new Set(wanted.map((r) => r.dst));
    for (const old of this.#routes.get(node) ?? []) if (!keep.has(old.dst)) await this.#delete(nl, old);
    this.#routes.set(node, wanted);
    this.#log.debug({ node, routes: wanted.map(describe) }, 'node routes set');
  }

  /** Removes every route of `node`. */
  async remove(node: string): Promise<void> {
    const routes = this.#routes.get(node);
    if (!routes) return;
    const nl = await this.netlink();
    for (const route of routes) await this.#delete(nl, route);
    this.#routes.delete(node);
    this.#log.debug({ node, routes: routes.map(describe) }, 'node routes removed');
  }

  /**
   * Removes every route marked {@link NODE_ROUTE_PROTOCOL} in the main table that no node of
   * this table has: left by an earlier run for nodes that are gone. Returns their destinations.
   */
  async pruneUnowned(): Promise<string[]> {
    const nl = await this.netlink();
    const owned = new Set([...this.#routes.values()].flat().map((r) => r.dst));
    const stale = (await nl.listRoutes({ family: 4 })).filter((r) => r.protocol === NODE_ROUTE_PROTOCOL && r.table === 254 && !owned.has(r.dst));
    for (const route of stale) await this.#delete(nl, { dst: route.dst });
    if (stale.length > 0) this.#log.info({ routes: stale.map((r) => r.dst) }, 'removed routes of departed nodes');
    return stale.map((r) => r.dst);
  }

  /** The routes set for `node`. */
  routes(node: string): readonly RouteSpec[] {
    return this.#routes.get(node) ?? [];
  }

  /** Closes the netlink handle; the routes stay. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await (await handle?.catch(() => undefined))?.close();
  }

  async #delete(nl: NetlinkHandle, route: RouteSpec): Promise<void> {
    try {
      await nl.deleteRoute({ dst: route.dst, protocol: NODE_ROUTE_PROTOCOL, ...(route.table ? { table: route.table } : {}) });
    } catch (err) {
      // Gone already (its device went, or someone removed it): nothing left to do.
      if ((err as { code?: string }).code !== 'ESRCH') throw err;
    }
  }

  /** The handle the routes go through: opened on first use, closed by {@link close}. */
  netlink(): Promise<NetlinkHandle> {
    return (this.#handle ??= this.#open());
  }
}

function describe(r: RouteSpec): string {
  return `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev !== undefined ? ` dev ${r.dev}` : ''}`;
}

/**
 * An {@link Encapsulation} whose remote nodes are routes: subclasses say which routes lead to a
 * node (`routesTo`); joining, changing, leaving and pruning are the {@link NodeRouteTable}'s.
 */
export abstract class RoutedEncapsulation implements Encapsulation {
  abstract readonly mode: string;
  abstract readonly overhead: number;
  protected readonly nodeRoutes: NodeRouteTable;

  constructor(options: NodeRouteTableOptions) {
    this.nodeRoutes = new NodeRouteTable(options);
  }

  abstract setup(local: NodeInfo): Promise<void>;

  /** The routes towards `node` (none: it gets none, and loses those it had). */
  protected abstract routesTo(node: NodeInfo): RouteSpec[];

  async upsertNode(node: NodeInfo): Promise<void> {
    await this.nodeRoutes.set(node.name, this.routesTo(node));
  }

  async deleteNode(name: string): Promise<void> {
    await this.nodeRoutes.remove(name);
  }

  /** Routes an earlier run set towards nodes that have left since go. */
  async pruneStale(): Promise<void> {
    await this.nodeRoutes.pruneUnowned();
  }

  /** The routes set towards `node`. */
  routes(node: string): readonly RouteSpec[] {
    return this.nodeRoutes.routes(node);
  }

  /** Netlink in the node's namespace (the routes' handle, shared): opened on first use, closed by {@link close}. */
  protected netlink(): Promise<NetlinkHandle> {
    return this.nodeRoutes.netlink();
  }

  /** Closes the netlink handle; the routes stay (forwarding goes on while the agent is away). */
  async close(): Promise<void> {
    await this.nodeRoutes.close();
  }
}
