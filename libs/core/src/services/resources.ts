import type { Unsubscribe } from '../net.js';

/** Kinds of resources the agent consumes. */
export type ResourceKind =
  | 'Namespace'
  | 'Pod'
  | 'Node'
  | 'Service'
  | 'EndpointSlice'
  | 'NetworkPolicy'
  | 'CiliumNetworkPolicy'
  | 'CiliumClusterwideNetworkPolicy';

/** A Kubernetes-shaped object: apiVersion, kind, metadata and the rest as given. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
  readonly [field: string]: unknown;
}

/** Identifies one resource. */
export interface ResourceRef {
  readonly kind: ResourceKind;
  readonly namespace?: string;
  readonly name: string;
}

/** What a resource source reports. */
export type ResourceEvent =
  | { readonly type: 'upsert'; readonly ref: ResourceRef; readonly object: KubeObject }
  | { readonly type: 'delete'; readonly ref: ResourceRef }
  /** Input that was refused; nothing changed because of it. */
  | { readonly type: 'invalid'; readonly origin: string; readonly path: string; readonly reason: string }
  /** The initial listing of the subscribed kinds has been delivered. */
  | { readonly type: 'synced' };

/** Pods, namespaces, services, policies, nodes: from a manifest directory or Kubernetes. */
export interface ResourceSource {
  /** e.g. `manifests:/etc/cilia/manifests` or `kubernetes`. */
  readonly name: string;
  /**
   * Who attaches the Pods it lists: `agent` (the default) — the agent gives each Pod a network
   * namespace and an endpoint of its own (the manifest directory); `cni` — a container runtime
   * attaches each Pod through cilia-cni (`K8S_POD_NAMESPACE`/`K8S_POD_NAME`), and the agent only
   * gives that endpoint its Pod's labels (Kubernetes).
   */
  readonly podAttachment?: 'agent' | 'cni';
  /** Delivers the current objects of `kinds` as upserts, then `synced`, then changes. */
  subscribe(kinds: readonly ResourceKind[], listener: (event: ResourceEvent) => void): Unsubscribe;
}
