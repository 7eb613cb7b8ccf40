import { ReservedIdentity, type Cidr, type IpCache, type IpCacheEntry, type Logger, type NodeInfo, type NodeRegistry } from '@cilia/core';
import { NodeFollower } from './follow.js';

/** What {@link RemotePodCidrs} needs. */
export interface RemotePodCidrsOptions {
  readonly registry: NodeRegistry;
  readonly ipcache: IpCache;
  /** This node's name: its own pod CIDRs stay out. */
  readonly node: string;
  readonly logger: Logger;
}

/**
 * Every other node's IPv4 pod CIDRs in the ipcache, as the world behind that node's tunnel
 * endpoint (Cilium's ipcache carries them the same way). A pod whose own entry is still on its
 * way through the KvStore is then known to lie behind its node: overlays encapsulate to it and
 * masquerading leaves it alone, while policy sees the world, as for any address it does not know.
 * An entry of another source for exactly such a prefix (a CIDR a policy names) is left as it is.
 */
export class RemotePodCidrs {
  readonly #o: RemotePodCidrsOptions;
  /** The prefixes written, by node. */
  readonly #written = new Map<string, Cidr[]>();
  readonly #nodes: NodeFollower;

  constructor(options: RemotePodCidrsOptions) {
    this.#o = options;
    this.#nodes = new NodeFollower(
      options.registry,
      options.node,
      (event) => (event.type === 'leave' ? this.#remove(event.node.name) : this.#set(event.node)),
      (err, event) =>
        options.logger.error({ node: event.node.name, event: event.type, err: err instanceof Error ? err.message : String(err) }, 'cannot update the pod CIDRs of a node in the ipcache'),
    );
  }

  /** Writes the entries of the nodes known so far and follows the registry. */
  start(): Promise<void> {
    return this.#nodes.start();
  }

  /** Stops following; the entries stay (the datapath keeps using them). */
  stop(): void {
    this.#nodes.stop();
  }

  /** Resolves once every queued change is in the ipcache. */
  settled(): Promise<void> {
    return this.#nodes.settled();
  }

  /** The prefixes written for `node`. */
  prefixes(node: string): readonly Cidr[] {
    return this.#written.get(node) ?? [];
  }

  async #set(node: NodeInfo): Promise<void> {
    const tunnelEndpoint = node.tunnelEndpoint ?? node.ipv4;
    const wanted = tunnelEndpoint ? node.podCidrs.filter((cidr) => !cidr.includes(':')) : [];
    const entries = new Map(this.#o.ipcache.list().map((e) => [e.prefix, e]));
    const mine = (prefix: Cidr) => this.#isMine(entries.get(prefix), node.name);
    const upserts: IpCacheEntry[] = [];
    for (const prefix of wanted) {
      if (!mine(prefix)) {
        this.#o.logger.warn({ node: node.name, prefix, source: entries.get(prefix)?.source }, 'another ipcache entry holds this pod CIDR: left as it is');
        continue;
      }
      upserts.push({ prefix, identity: ReservedIdentity.world, tunnelEndpoint: tunnelEndpoint!, node: node.name, source: 'kvstore' });
    }
    const deletes = this.prefixes(node.name).filter((p) => !wanted.includes(p) && mine(p));
    if (upserts.length > 0 || deletes.length > 0) await this.#o.ipcache.apply({ upserts, deletes, deleteSource: 'kvstore' });
    this.#written.set(node.name, upserts.map((e) => e.prefix));
  }

  async #remove(name: string): Promise<void> {
    const entries = new Map(this.#o.ipcache.list().map((e) => [e.prefix, e]));
    const deletes = this.prefixes(name).filter((p) => this.#isMine(entries.get(p), name));
    this.#written.delete(name);
    if (deletes.length > 0) await this.#o.ipcache.apply({ upserts: [], deletes, deleteSource: 'kvstore' });
  }

  /** No entry for the prefix, or the one this class wrote for `node`. */
  #isMine(entry: IpCacheEntry | undefined, node: string): boolean {
    return !entry || (entry.source === 'kvstore' && entry.node === node && entry.identity === ReservedIdentity.world);
  }
}
