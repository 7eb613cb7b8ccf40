import type { Cidr, IpAddress } from '../net.js';

/** A node as the routing layer sees it. */
export interface NodeInfo {
  readonly name: string;
  readonly ipv4?: IpAddress;
  readonly ipv6?: IpAddress;
  readonly podCidrs: readonly Cidr[];
  /** Underlay address tunnels to this node go to (usually its node IP). */
  readonly tunnelEndpoint?: IpAddress;
}

/**
 * How pods on different nodes reach each other: an overlay (VXLAN, Geneve) or native routing.
 * Exactly one is active on a node.
 */
export interface Encapsulation {
  /** e.g. `vxlan`, `geneve`, `native`. */
  readonly mode: string;
  /** Bytes the encapsulation adds; pod MTU is the device MTU minus this. */
  readonly overhead: number;
  /**
   * Whether pod packets over 64 KiB (BIG TCP's GSO packets) cross it whole. An overlay says yes
   * when its own eBPF writes the outer headers (lengths 0 where 16 bits cannot hold them, as the
   * kernel does for BIG TCP) and takes them off at the receiving node before the stack reads
   * them. Without it, the datapath keeps BIG TCP off while the encapsulation is loaded.
   */
  readonly bigTcp?: boolean;
  /**
   * Node-level setup once the base datapath is loaded: its devices' own programs, local routes.
   * (The datapath slots an overlay fills are declared in its plugin's `bpf:` and installed by the
   * agent before the plugin starts.)
   */
  setup(local: NodeInfo): Promise<void>;
  /** A node joined or changed: routes or tunnel entries towards it. */
  upsertNode(node: NodeInfo): Promise<void>;
  /** A node left: everything towards it is removed. */
  deleteNode(name: string): Promise<void>;
  /**
   * Optional: every node there is has been upserted since setup (the registry listed them all);
   * remove what is left from nodes that are gone — routes or tunnel entries an earlier run of
   * the agent set for nodes that left while it was away.
   */
  pruneStale?(): Promise<void>;
}
