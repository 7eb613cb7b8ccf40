import type { Encapsulation, Logger, NodeInfo } from '@cilia/core';
import type { NetlinkHandle } from '@cilia/netlink';
import { NodeRouteTable } from '@cilia/nodes';

/** What {@link NativeRouting} needs. */
export interface NativeRoutingOptions {
  readonly logger: Logger;
  /** Netlink in the node's namespace; default the agent's own. */
  readonly netlink?: () => Promise<NetlinkHandle>;
}

/**
 * Native routing (Cilium's auto direct node routes): every other node's pod CIDRs are routed
 * through that node's IPv4 address, which must be on a network this node shares (the kernel
 * refuses a gateway it has no route to). No encapsulation and no overhead: packets cross the
 * underlay with pod addresses, and the receiving node finds the source's identity in the
 * ipcache by its address (the base from-netdev program does that).
 */
export class NativeRouting implements Encapsulation {
  readonly mode = 'native';
  readonly overhead = 0;
  readonly #log: Logger;
  readonly #routes: NodeRouteTable;
  #local?: NodeInfo;

  constructor(options: NativeRoutingOptions) {
    this.#log = options.logger;
    this.#routes = new NodeRouteTable({ logger: options.logger, ...(options.netlink ? { netlink: options.netlink } : {}) });
  }

  async setup(local: NodeInfo): Promise<void> {
    this.#local = local;
    this.#log.info({ node: local.name, ipv4: local.ipv4 }, 'native routing: routes to the other nodes follow the node registry');
  }

  async upsertNode(node: NodeInfo): Promise<void> {
    if (!node.ipv4 || node.ipv4 === this.#local?.ipv4) {
      this.#log.warn({ node: node.name, ipv4: node.ipv4 }, 'node has no IPv4 address of its own: no routes to its pods');
      return this.#routes.remove(node.name);
    }
    const gateway = node.ipv4;
    await this.#routes.set(
      node.name,
      node.podCidrs.filter((cidr) => !cidr.includes(':')).map((dst) => ({ dst, gateway })),
    );
  }

  async deleteNode(name: string): Promise<void> {
    await this.#routes.remove(name);
  }

  /** Routes an earlier run set towards nodes that have left since go. */
  async pruneStale(): Promise<void> {
    await this.#routes.pruneUnowned();
  }

  /** The routes set towards `node`. */
  routes(node: string) {
    return this.#routes.routes(node);
  }

  /** Closes the netlink handle; the routes stay (forwarding goes on while the agent is away). */
  async close(): Promise<void> {
    await this.#routes.close();
  }
}
