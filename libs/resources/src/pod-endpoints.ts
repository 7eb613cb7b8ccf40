import type { Endpoint, EndpointManager, KubeObject, Labels, Logger, NamedPort, ResourceEvent, ResourceSource, Unsubscribe } from '@cilia/core';
import type { OwnedPods } from './owned-pods.js';

/** Cilia's label source for labels that come from Kubernetes objects. */
const K8S = 'k8s:';
const NAMESPACE_LABEL = `${K8S}io.kubernetes.pod.namespace`;
/** Cilium's prefix for the labels of the pod's namespace. */
const NAMESPACE_LABELS_PREFIX = `${K8S}io.cilium.k8s.namespace.labels.`;
/** Kubernetes gives every namespace this label, its own name (so policies can select it by name). */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * The endpoint labels of a Pod as Cilium derives them: each `metadata.labels` key prefixed
 * `k8s:`, `k8s:io.kubernetes.pod.namespace=<namespace>`, and each label of its namespace as
 * `k8s:io.cilium.k8s.namespace.labels.<key>`, `kubernetes.io/metadata.name=<namespace>`
 * among them (Kubernetes sets it on every namespace, so it is there before the Namespace is).
 */
export function podEndpointLabels(pod: KubeObject, namespaceLabels: Labels = {}): Labels {
  const namespace = pod.metadata.namespace ?? 'default';
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(pod.metadata.labels ?? {})) labels[`${K8S}${key}`] = value;
  labels[NAMESPACE_LABEL] = namespace;
  for (const [key, value] of Object.entries({ ...namespaceLabels, [NAMESPACE_NAME_LABEL]: namespace })) labels[`${NAMESPACE_LABELS_PREFIX}${key}`] = value;
  return labels;
}

/** A Pod's named container ports (`containers[].ports[].name`), for policy rules that name a port. */
export function podNamedPorts(pod: KubeObject): Record<string, NamedPort> | undefined {
  const containers = (pod.spec as { containers?: unknown } | undefined)?.containers;
  if (!Array.isArray(containers)) return undefined;
  const ports: Record<string, NamedPort> = {};
  for (const c of containers as { ports?: unknown }[]) {
    if (!Array.isArray(c?.ports)) continue;
    for (const p of c.ports as { name?: unknown; containerPort?: unknown; protocol?: unknown }[]) {
      if (typeof p?.name !== 'string' || typeof p.containerPort !== 'number') continue;
      // The schema filled in TCP, and refused duplicate names across containers.
      ports[p.name] = { port: p.containerPort, protocol: (typeof p.protocol === 'string' ? p.protocol : 'TCP') as NamedPort['protocol'] };
    }
  }
  return Object.keys(ports).length > 0 ? ports : undefined;
}

/** Settings of {@link PodEndpointController}. */
export interface PodEndpointControllerOptions {
  readonly source: ResourceSource;
  readonly endpoints: EndpointManager;
  readonly logger: Logger;
  /** Where the controller remembers which pods' endpoints it manages. */
  readonly owned: OwnedPods;
  /** First retry delay after a failed operation; doubles up to `retryMaxMs`. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

interface Desired {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
  /** The Pod, so a namespace relabel can derive its labels again. */
  readonly pod: KubeObject;
}

/** The work of one pod: the state wanted, and at most one operation running for it. */
interface PodWork {
  readonly name: string;
  readonly namespace: string;
  /** Absent: no Pod backs this endpoint, delete it. */
  desired?: Desired;
  /** Bumped by every event, so the loop knows whether it is done. */
  generation: number;
  running?: Promise<void>;
  /** Ends a retry wait early when a newer event arrives. */
  wake?: () => void;
}

/**
 * Makes endpoints follow Pods: a Pod without an endpoint gets one (in a namespace the agent
 * creates), a label change — of the Pod or of its Namespace — updates the endpoint's labels
 * (and so its identity and policy), a deleted Pod deletes its endpoint.
 *
 * It finds a Pod's endpoint by namespace and name among the endpoints without a container id
 * (CNI's have one), and records the pods it manages (see {@link OwnedPods}) before it creates
 * anything.
 *
 * Where the source's Pods are attached by a container runtime (`podAttachment: 'cni'`,
 * Kubernetes), it creates and deletes nothing: the endpoint cilia-cni made for a Pod (its
 * `K8S_POD_NAMESPACE`/`K8S_POD_NAME` as the endpoint's namespace and name, a container id) takes
 * the Pod's `k8s:` labels — when it appears, when the Pod is listed, and whenever the Pod's or
 * its Namespace's labels change — and keeps the labels of its own CNI config. Operations are serialized per pod, coalesced (only the latest wanted state is
 * applied) and retried with backoff. Recorded endpoints no Pod backs any more are deleted only
 * once the source has delivered its full listing (`synced`), so a restart never loses one, and
 * endpoints made through the CLI or the API are never touched.
 */
export class PodEndpointController {
  readonly #options: PodEndpointControllerOptions;
  readonly #log: Logger;
  readonly #work = new Map<string, PodWork>();
  /** Labels of each Namespace the source has listed. */
  readonly #namespaces = new Map<string, Labels>();
  #owned = new Set<string>();
  #saving: Promise<void> = Promise.resolve();
  #unsubscribe?: Unsubscribe;
  #unsubscribeEndpoints?: Unsubscribe;
  #stopped = false;
  #synced = false;

  constructor(options: PodEndpointControllerOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  /** Whether the runtime attaches Pods (cilia-cni) and this controller only labels their endpoints. */
  get #cni(): boolean {
    return this.#options.source.podAttachment === 'cni';
  }

  /** Subscribes to Pods and Namespaces; resolves once the source's initial listing has been taken in. */
  async start(): Promise<void> {
    this.#owned = new Set(await this.#options.owned.load());
    if (this.#cni) {
      // A CNI endpoint appearing (or relabelled by someone else) for a Pod we know: its labels again.
      this.#unsubscribeEndpoints = this.#options.endpoints.subscribe(({ type, endpoint }) => {
        if (this.#stopped || type !== 'upsert' || endpoint.containerId === undefined) return;
        const work = this.#work.get(podKey(endpoint.namespace, endpoint.name));
        if (work?.desired && !sameK8sLabels(endpoint, work.desired.labels)) this.#want(work.namespace, work.name, work.desired);
      });
    }
    await new Promise<void>((resolve) => {
      this.#unsubscribe = this.#options.source.subscribe(['Namespace', 'Pod'], (event) => {
        this.#onEvent(event);
        if (event.type === 'synced') resolve();
      });
    });
  }

  /** Stops taking events, cancels retries and waits for the operations under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribeEndpoints?.();
    for (const w of this.#work.values()) w.wake?.();
    await Promise.allSettled([...this.#work.values()].map((w) => w.running));
  }

  /** Resolves when no operation is running or waiting to be retried (for tests and tools). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.#work.values()].map((w) => w.running).filter((r) => r !== undefined);
      if (running.length === 0) return;
      await Promise.allSettled(running);
    }
  }

  #onEvent(event: ResourceEvent): void {
    if (this.#stopped) return;
    switch (event.type) {
      case 'upsert': {
        if (event.ref.kind === 'Namespace') {
          this.#namespaceLabels(event.object.metadata.name, event.object.metadata.labels ?? {});
          break;
        }
        const { name, namespace = 'default' } = event.object.metadata;
        // A host-network Pod shares the node's namespace: it has no endpoint, as in Cilium.
        const hostNetwork = (event.object.spec as { hostNetwork?: unknown } | undefined)?.hostNetwork === true;
        this.#want(namespace, name, hostNetwork ? undefined : this.#desired(event.object));
        break;
      }
      case 'delete':
        if (event.ref.kind === 'Namespace') this.#namespaceLabels(event.ref.name, undefined);
        else this.#want(event.ref.namespace ?? 'default', event.ref.name, undefined);
        break;
      case 'synced':
        if (!this.#synced) {
          this.#synced = true;
          this.#collectOrphans();
        }
        break;
      case 'invalid':
        break; // the source reports it; nothing changes
    }
  }

  #desired(pod: KubeObject): Desired {
    const { name, namespace = 'default' } = pod.metadata;
    const namedPorts = podNamedPorts(pod);
    return { name, namespace, labels: podEndpointLabels(pod, this.#namespaces.get(namespace)), ...(namedPorts ? { namedPorts } : {}), pod };
  }

  /** A Namespace's labels changed (or it went): its pods' endpoints get their labels again. */
  #namespaceLabels(namespace: string, labels: Labels | undefined): void {
    const before = this.#namespaces.get(namespace);
    if (labels) this.#namespaces.set(namespace, { ...labels });
    else this.#namespaces.delete(namespace);
    if (sameLabels(before ?? {}, labels ?? {})) return;
    for (const work of this.#work.values()) {
      if (work.namespace === namespace && work.desired) this.#want(namespace, work.name, this.#desired(work.desired.pod));
    }
  }

  /** After the full listing: the pods we recorded that are gone (their endpoints, if any, go too). */
  #collectOrphans(): void {
    const gone = [...this.#owned].filter((key) => !this.#work.get(key)?.desired);
    if (gone.length > 0) this.#log.info({ pods: gone }, 'deleting the endpoints of Pods gone while the agent was down');
    for (const key of gone) {
      const slash = key.indexOf('/');
      this.#want(key.slice(0, slash), key.slice(slash + 1), undefined);
    }
  }

  /** Saves the record; saves never overlap, and a failed one fails the operation (retried). */
  #persist(): Promise<void> {
    const snapshot = new Set(this.#owned);
    const saved = this.#saving.then(() => this.#options.owned.save(snapshot));
    this.#saving = saved.catch(() => undefined);
    return saved;
  }

  #want(namespace: string, name: string, desired: Desired | undefined): void {
    const key = podKey(namespace, name);
    let work = this.#work.get(key);
    if (!work) {
      work = { name, namespace, generation: 0 };
      this.#work.set(key, work);
    }
    work.desired = desired;
    work.generation++;
    if (work.running) {
      work.wake?.();
      return;
    }
    const w = work;
    w.running = this.#run(key, w).finally(() => {
      w.running = undefined;
      if (!w.desired && this.#work.get(key) === w) this.#work.delete(key);
    });
  }

  async #run(key: string, work: PodWork): Promise<void> {
    const initial = this.#options.retryInitialMs ?? 500;
    const max = this.#options.retryMaxMs ?? 30_000;
    let attempt = 0;
    while (!this.#stopped) {
      const generation = work.generation;
      try {
        await this.#apply(work);
        attempt = 0;
        if (work.generation === generation) return;
      } catch (err) {
        attempt++;
        const delayMs = Math.min(max, initial * 2 ** (attempt - 1));
        this.#log.warn({ err, pod: key, attempt, retryInMs: delayMs }, work.desired ? 'cannot bring the endpoint in line with its Pod; retrying' : 'cannot delete the endpoint of a deleted Pod; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          work.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        work.wake = undefined;
      }
    }
  }

  async #apply(work: PodWork): Promise<void> {
    if (this.#cni) return this.#labelAttached(work);
    const { endpoints } = this.#options;
    const key = podKey(work.namespace, work.name);
    const desired = work.desired;
    if (!desired && !this.#owned.has(key)) return;
    if (desired && !this.#owned.has(key)) {
      this.#owned.add(key);
      await this.#persist(); // recorded before created: a crash in between leaves nothing unowned
    }
    const mine = endpoints.list().filter((e) => e.containerId === undefined && e.namespace === work.namespace && e.name === work.name);
    const [current, ...extra] = desired ? mine : [];
    for (const e of desired ? extra : mine) {
      await endpoints.delete(e.id);
      this.#log.info({ pod: key, endpoint: e.id }, 'endpoint deleted');
    }
    if (!desired) {
      this.#owned.delete(key);
      await this.#persist();
      return;
    }
    if (!current) {
      const created = await endpoints.create({ name: desired.name, namespace: desired.namespace, labels: desired.labels, ...(desired.namedPorts ? { namedPorts: desired.namedPorts } : {}) });
      this.#log.info({ pod: key, endpoint: created.id, ipv4: created.ipv4, netns: created.netns }, 'endpoint created');
      return;
    }
    if (!sameK8sLabels(current, desired.labels)) {
      await endpoints.updateLabels(current.id, desired.labels);
      this.#log.info({ pod: key, endpoint: current.id, labels: desired.labels }, 'endpoint labels updated');
    }
  }

  /** The endpoints cilia-cni attached for this Pod take its `k8s:` labels; their other labels stay. */
  async #labelAttached(work: PodWork): Promise<void> {
    const desired = work.desired;
    if (!desired) return; // a deleted Pod's endpoint goes with the runtime's CNI DEL
    const { endpoints } = this.#options;
    for (const e of endpoints.list()) {
      if (e.containerId === undefined || e.namespace !== work.namespace || e.name !== work.name || sameK8sLabels(e, desired.labels)) continue;
      const own = Object.fromEntries(Object.entries(e.labels).filter(([k]) => !k.startsWith(K8S)));
      const updated = await endpoints.updateLabels(e.id, { ...own, ...desired.labels });
      this.#log.info({ pod: podKey(work.namespace, work.name), endpoint: e.id, containerId: e.containerId, identity: updated.identity }, 'endpoint attached by CNI takes its Pod\'s labels');
    }
  }
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** Compares only the labels this controller sets (`k8s:`), so labels the manager adds cause no churn. */
function sameK8sLabels(endpoint: Endpoint, labels: Labels): boolean {
  const current = Object.entries(endpoint.labels).filter(([k]) => k.startsWith(K8S));
  return current.length === Object.keys(labels).length && current.every(([k, v]) => labels[k] === v);
}
