import type { Unsubscribe } from '../net.js';
import type { NodeInfo } from './encapsulation.js';

/** A node appearing, changing or disappearing (its lease expired or its key was deleted). */
export type NodeEvent =
  | { readonly type: 'join'; readonly node: NodeInfo }
  | { readonly type: 'update'; readonly node: NodeInfo }
  | { readonly type: 'leave'; readonly node: NodeInfo };

/**
 * The nodes of the cluster: this agent registers its own node (under a lease) and watches
 * the others register, change and leave.
 */
export interface NodeRegistry {
  /** This agent's own node, once registered. */
  local(): NodeInfo | undefined;
  /** Every node known, this one included. */
  list(): readonly NodeInfo[];
  /** Every change from now on. */
  subscribe(listener: (event: NodeEvent) => void): Unsubscribe;
}

/**
 * This node as it registers — name, addresses, tunnel endpoint, pod CIDRs — known before it
 * registers anywhere (Cilium's local node store), so what is set up before the node joins (an
 * overlay's load-time constants, say) can use it.
 */
export interface LocalNode {
  /** This node; throws before the providing plugin has started. */
  get(): NodeInfo;
}
