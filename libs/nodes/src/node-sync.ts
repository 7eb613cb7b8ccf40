import type { Encapsulation, IpCache, KvStore, Logger, NodeInfo } from '@cilia/core';
import { EncapsulationDriver } from './encapsulation.js';
import { KvIpCacheSync } from './ipcache-sync.js';
import { RemotePodCidrs } from './pod-cidrs.js';
import type { KvNodeRegistry } from './registry.js';
import { NodeSession } from './session.js';

/** What {@link NodeSync} needs. */
export interface NodeSyncOptions {
  readonly registry: KvNodeRegistry;
  readonly kv: KvStore;
  readonly ipcache: IpCache;
  /** This node, as it registers. */
  readonly node: NodeInfo;
  /** KvStore prefix of the shared ipcache entries. */
  readonly ipcachePrefix: string;
  readonly logger: Logger;
}

/**
 * This node among the others: the other nodes' pod CIDRs in the ipcache, the encapsulation (an
 * overlay or native routing) set up and kept in step with the registry, the node registered
 * under its lease and the ipcache shared through the KvStore. Started once the local endpoints
 * are adopted, so the entries published for this node are complete from the first.
 */
export class NodeSync {
  readonly #o: NodeSyncOptions;
  #cidrs?: RemotePodCidrs;
  #driver?: EncapsulationDriver;
  #session?: NodeSession;

  constructor(options: NodeSyncOptions) {
    this.#o = options;
  }

  async start(encapsulation: Encapsulation | undefined): Promise<void> {
    const { registry, node, logger } = this.#o;
    const sync = new KvIpCacheSync({
      kv: this.#o.kv,
      ipcache: this.#o.ipcache,
      node: node.name,
      ...(node.tunnelEndpoint ? { tunnelEndpoint: node.tunnelEndpoint } : {}),
      lease: () => registry.lease(),
      logger: logger.child({ component: 'ipcache-sync' }),
      prefix: this.#o.ipcachePrefix,
    });
    // A new lease (the old one was lost): the entries it held are gone, write them again.
    registry.onLease(() => void sync.republish());
    // Other nodes' pod CIDRs before their routes: a pod's first packets to a remote pod whose
    // own entry has not arrived yet are encapsulated, and not masqueraded, from the start.
    this.#cidrs = new RemotePodCidrs({ registry, ipcache: this.#o.ipcache, node: node.name, logger: logger.child({ component: 'pod-cidrs' }) });
    await this.#cidrs.start();
    if (encapsulation) {
      this.#driver = new EncapsulationDriver({ encapsulation, registry, local: node, logger: logger.child({ component: 'encapsulation' }) });
      await this.#driver.start();
    }
    this.#session = new NodeSession({ registry, sync, node, logger });
    await this.#session.start();
    // Registered and listed: whatever the encapsulation restored for nodes not listed is stale.
    // (Not registered yet — KvStore away — the list is unknown: keep everything meanwhile.)
    if (this.#session.problems().length === 0) await this.#driver?.pruneStale();
  }

  /** What keeps the node from being registered, if anything. */
  problems(): string[] {
    return this.#session?.problems() ?? [];
  }

  async stop(): Promise<void> {
    this.#driver?.stop();
    this.#cidrs?.stop();
    await this.#session?.stop();
  }
}
