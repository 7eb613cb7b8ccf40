import type { KubeObject, Logger, ResourceEvent, ResourceKind, ResourceRef, ResourceSource, Unsubscribe } from '@cilia/core';
import { resourcePath, type KubeClient } from './client.js';
import { Informer, type InformerStatus } from './informer.js';

/** Where each kind the agent consumes is served, and whether it may be missing (a CRD). */
export const KUBERNETES_KINDS: Readonly<Record<ResourceKind, { readonly apiVersion: string; readonly plural: string; readonly namespaced: boolean; readonly optional?: boolean }>> = {
  Namespace: { apiVersion: 'v1', plural: 'namespaces', namespaced: false },
  Pod: { apiVersion: 'v1', plural: 'pods', namespaced: true },
  Node: { apiVersion: 'v1', plural: 'nodes', namespaced: false },
  Service: { apiVersion: 'v1', plural: 'services', namespaced: true },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', plural: 'endpointslices', namespaced: true },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  CiliumNetworkPolicy: { apiVersion: 'cilium.io/v2', plural: 'ciliumnetworkpolicies', namespaced: true, optional: true },
  CiliumClusterwideNetworkPolicy: { apiVersion: 'cilium.io/v2', plural: 'ciliumclusterwidenetworkpolicies', namespaced: false, optional: true },
};

/** Settings of {@link KubernetesResourceSource}. */
export interface KubernetesResourceSourceOptions {
  readonly client: KubeClient;
  /** This node: only its Pods are watched (`spec.nodeName`). */
  readonly nodeName: string;
  readonly logger: Logger;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly watchTimeoutSeconds?: number;
}

interface Subscription {
  readonly kinds: ReadonlySet<ResourceKind>;
  readonly listener: (event: ResourceEvent) => void;
  synced: boolean;
}

/**
 * The Kubernetes `ResourceSource`: one informer per kind, started when a subscriber first asks
 * for the kind — this node's Pods (field selector `spec.nodeName`), Namespaces, Nodes, Services,
 * EndpointSlices, NetworkPolicies, and Cilium's CiliumNetworkPolicies and
 * CiliumClusterwideNetworkPolicies (`cilium.io/v2`; taken as empty while their CRDs are not
 * installed). A subscriber gets what the informers hold as upserts, `synced` once every kind it
 * asked for has been listed, then changes. While the API server is away nothing is reported
 * deleted; on its return the informers resume (or re-list after a 410 Gone) and report what
 * changed meanwhile.
 */
export class KubernetesResourceSource implements ResourceSource {
  readonly name: string;
  /** Pods are attached by the container runtime through cilia-cni; their endpoints take the Pods' labels. */
  readonly podAttachment = 'cni';
  readonly #o: KubernetesResourceSourceOptions;
  readonly #log: Logger;
  readonly #informers = new Map<ResourceKind, Informer>();
  readonly #subscriptions = new Set<Subscription>();
  #stopped = false;

  constructor(options: KubernetesResourceSourceOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.name = `kubernetes:${options.client.server}`;
  }

  subscribe(kinds: readonly ResourceKind[], listener: (event: ResourceEvent) => void): Unsubscribe {
    const sub: Subscription = { kinds: new Set(kinds), listener, synced: false };
    // In the order asked for (Namespaces before Pods, say), what is known already.
    for (const kind of kinds) {
      const informer = this.#informer(kind);
      if (informer.synced) for (const object of informer.list()) this.#deliver(sub, { type: 'upsert', ref: refOf(kind, object), object });
    }
    this.#subscriptions.add(sub);
    this.#checkSynced(sub);
    return () => this.#subscriptions.delete(sub);
  }

  /** Each informer's state, for health reports and `GET /v1/kubernetes`. */
  status(): InformerStatus[] {
    return [...this.#informers.values()].map((i) => i.status());
  }

  /** What is wrong now, one line each. */
  problems(): string[] {
    const problems: string[] = [];
    for (const s of this.status()) {
      if (s.failing) problems.push(`${s.kind}: ${s.synced ? 'watch' : 'list'} failing since ${s.failing.since} (${s.failing.attempts} attempts): ${s.failing.error}`);
      else if (s.absent) problems.push(`${s.kind}: not served by the API server (CRD not installed?)`);
      else if (!s.synced) problems.push(`${s.kind}: not listed yet`);
    }
    return problems;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscriptions.clear();
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
  }

  #informer(kind: ResourceKind): Informer {
    let informer = this.#informers.get(kind);
    if (informer) return informer;
    const spec = KUBERNETES_KINDS[kind];
    if (!spec) throw new TypeError(`kinds: ${JSON.stringify(kind)} is not a kind the Kubernetes source serves`);
    const o = this.#o;
    informer = new Informer(
      {
        client: o.client,
        logger: this.#log,
        apiVersion: spec.apiVersion,
        kind,
        path: resourcePath(spec.apiVersion, spec.plural),
        ...(kind === 'Pod' ? { fieldSelector: `spec.nodeName=${o.nodeName}` } : {}),
        ...(spec.optional ? { optional: true } : {}),
        ...(o.retryInitialMs !== undefined ? { retryInitialMs: o.retryInitialMs } : {}),
        ...(o.retryMaxMs !== undefined ? { retryMaxMs: o.retryMaxMs } : {}),
        ...(o.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {}),
      },
      {
        upsert: (object) => this.#emit(kind, { type: 'upsert', ref: refOf(kind, object), object }),
        delete: (object) => this.#emit(kind, { type: 'delete', ref: refOf(kind, object) }),
        listed: () => {
          for (const sub of this.#subscriptions) this.#checkSynced(sub);
        },
      },
    );
    this.#informers.set(kind, informer);
    if (!this.#stopped) informer.start();
    return informer;
  }

  #emit(kind: ResourceKind, event: ResourceEvent): void {
    for (const sub of this.#subscriptions) if (sub.kinds.has(kind)) this.#deliver(sub, event);
  }

  #checkSynced(sub: Subscription): void {
    if (sub.synced || ![...sub.kinds].every((k) => this.#informers.get(k)?.synced)) return;
    sub.synced = true;
    this.#deliver(sub, { type: 'synced' });
  }

  #deliver(sub: Subscription, event: ResourceEvent): void {
    try {
      sub.listener(event);
    } catch (err) {
      this.#log.error({ err, event: event.type }, 'a resource subscriber failed on an event');
    }
  }
}

function refOf(kind: ResourceKind, object: KubeObject): ResourceRef {
  const namespaced = KUBERNETES_KINDS[kind].namespaced;
  return { kind, name: object.metadata.name, ...(namespaced && object.metadata.namespace ? { namespace: object.metadata.namespace } : {}) };
}
