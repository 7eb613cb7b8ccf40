// Who an address is: a local endpoint (id, pod, namespace, labels), a remote pod (the shared
// ipcache names it; its identity's labels come from the allocator) or a reserved identity
// (host, world, …). Answers are cached per address and identity; any endpoint, ipcache or
// identity change clears the cache.
import type { Endpoint, EndpointManager, FlowPeer, IdentityAllocator, IpCache, Labels, Unsubscribe } from '@cilia/core';
import { ReservedIdentity } from '@cilia/core';

/** Where enrichment reads from; each is optional (an agent without an allocator, say). */
export interface EnricherSources {
  readonly endpoints?: EndpointManager;
  readonly identities?: IdentityAllocator;
  readonly ipcache?: IpCache;
}

const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace';

/** Labels Cilium gives its reserved identities, for when no allocator knows them. */
const RESERVED_LABELS: Readonly<Record<number, Labels>> = Object.fromEntries(
  Object.entries(ReservedIdentity).map(([name, id]) => [id, { [`reserved:${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`]: '' }]),
);

/** The maximum number of addresses remembered between changes. */
const CACHE_MAX = 65536;

export class Enricher {
  readonly #sources: EnricherSources;
  readonly #byIp = new Map<string, Endpoint>();
  readonly #cache = new Map<string, FlowPeer>();
  readonly #unsubscribe: Unsubscribe[] = [];

  constructor(sources: EnricherSources) {
    this.#sources = sources;
  }

  /** Indexes the endpoints and follows every change from now on. */
  start(): void {
    const { endpoints, ipcache, identities } = this.#sources;
    if (endpoints) {
      this.#unsubscribe.push(
        endpoints.subscribe(({ type, endpoint }) => {
          if (endpoint.ipv4) {
            if (type === 'delete') this.#byIp.delete(endpoint.ipv4);
            else this.#byIp.set(endpoint.ipv4, endpoint);
          }
          this.#cache.clear();
        }),
      );
      for (const e of endpoints.list()) if (e.ipv4) this.#byIp.set(e.ipv4, e);
    }
    if (ipcache) this.#unsubscribe.push(ipcache.subscribe(() => this.#cache.clear()));
    if (identities) this.#unsubscribe.push(identities.watch(() => this.#cache.clear()));
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
  }

  /**
   * One side of a flow: `identity` is what the datapath saw (0 when it did not know), the
   * ipcache's identity for the address otherwise.
   */
  peer(ip: string, identity: number, port?: number): FlowPeer {
    const key = `${ip}|${identity}`;
    let peer = this.#cache.get(key);
    if (!peer) {
      peer = this.#resolve(ip, identity);
      if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
      this.#cache.set(key, peer);
    }
    return port === undefined ? peer : { ...peer, port };
  }

  /** The local endpoint with this id, if any. */
  endpoint(id: number): Endpoint | undefined {
    return id === 0 ? undefined : this.#sources.endpoints?.get(id);
  }

  #resolve(ip: string, seen: number): FlowPeer {
    const local = this.#byIp.get(ip);
    const cached = local ? undefined : this.#sources.ipcache?.lookup(ip);
    const identity = seen !== 0 ? seen : (local?.identity ?? cached?.identity ?? (ip === '0.0.0.0' ? ReservedIdentity.unknown : ReservedIdentity.world));
    const labels = this.#labels(identity, local);
    const namespace = local?.namespace ?? cached?.namespace ?? labels[NAMESPACE_LABEL];
    const podName = local?.name ?? cached?.podName;
    return {
      ip,
      identity,
      labels,
      ...(namespace ? { namespace } : {}),
      ...(podName ? { podName } : {}),
      ...(local ? { id: local.id } : {}),
    };
  }

  #labels(identity: number, local: Endpoint | undefined): Labels {
    const known = this.#sources.identities?.lookup(identity)?.labels;
    if (known) return known;
    if (local) return { ...local.labels, [NAMESPACE_LABEL]: local.namespace };
    return RESERVED_LABELS[identity] ?? {};
  }
}
