import type { NodeInfo } from './node.js';

/** An endpoint as the BPF side needs it. */
export interface DatapathEndpoint {
  readonly id: number;
  readonly ipv4: string;
  readonly hostInterface: string;
  readonly hostIfindex: number;
  readonly hostMac: string;
  readonly podIfindex: number;
  readonly podMac: string;
  readonly identity: number;
}

/** The programs-and-maps half of the endpoint manager's work. */
export interface EndpointDatapath {
  /** Loads the base objects and attaches the node programs; idempotent. */
  ensureNode(node: NodeInfo): Promise<void>;
  /** Writes the endpoints map entry, then attaches (atomically replacing) the endpoint's programs. */
  attachEndpoint(endpoint: DatapathEndpoint): Promise<void>;
  /** Removes the endpoints map entry (the programs go with the link). */
  detachEndpoint(endpoint: DatapathEndpoint): Promise<void>;
  /** Removes endpoints map entries of endpoints not in `valid` (after adoption). */
  pruneEndpoints(valid: readonly DatapathEndpoint[]): Promise<number>;
}
