import type { Logger, NodeInfo } from '@cilia/core';
import type { NetlinkHandle, RouteSpec } from '@cilia/netlink';
import { RoutedEncapsulation } from '@cilia/nodes';

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
export class NativeRouting extends RoutedEncapsulation {
  readonly mode = 'native';
  readonly overhead = 0;
  readonly #log: Logger;
  #local?: NodeInfo;

  constructor(options: NativeRoutingOptions) {
    super(options);
    this.#log = options.logger;
  }

  async setup(local: NodeInfo): Promise<void> {
    this.#local = local;
    this.#log.info({ node: local.name, ipv4: local.ipv4 }, 'native routing: routes to the other nodes follow the node registry');
  }

  protected routesTo(node: NodeInfo): RouteSpec[] {
    if (!node.ipv4 || node.ipv4 === this.#local?.ipv4) {
      this.#log.warn({ node: node.name, ipv4: node.ipv4 }, 'node has no IPv4 address of its own: no routes to its pods');
      return [];
    }
    const gateway = node.ipv4;
    return node.podCidrs.filter((cidr) => !cidr.includes(':')).map((dst) => ({ dst, gateway }));
  }
}
