import type { Labels, Logger } from '@cilia/core';
import type { CiliumIdentityStore, IdentityObject } from '@cilia/identity';
import { KubeApiError, resourcePath, type KubeClient } from './client.js';
import { Informer } from './informer.js';

const API_VERSION = 'cilium.io/v2';
const PLURAL = 'ciliumidentities';
/** The Kubernetes label Cilium copies from an identity's namespace label, so `kubectl get ciliumid -l` finds them. */
const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace';

/** Settings of {@link KubeCiliumIdentityStore}. */
export interface KubeCiliumIdentityStoreOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly watchTimeoutSeconds?: number;
}

/**
 * `CiliumIdentity` objects (cilium.io/v2, cluster-scoped) as the identity allocator's store in
 * `identity.mode: crd`: followed with an informer, created with a plain POST (the API server's
 * 409 AlreadyExists is the create-only answer), read back with a GET. Objects whose name is not
 * an identity number or whose `security-labels` are not a string map are skipped, with a warning.
 */
export class KubeCiliumIdentityStore implements CiliumIdentityStore {
  readonly #o: KubeCiliumIdentityStoreOptions;
  readonly #log: Logger;
  #informer?: Informer;

  constructor(options: KubeCiliumIdentityStoreOptions) {
    this.#o = options;
    this.#log = options.logger.child({ kind: 'CiliumIdentity' });
  }

  follow(handlers: { upsert(object: IdentityObject): void; delete(id: number): void; synced(): void }): void {
    if (this.#informer) throw new Error('CiliumIdentity objects are followed already');
    const o = this.#o;
    this.#informer = new Informer(
      {
        client: o.client,
        logger: o.logger,
        apiVersion: API_VERSION,
        kind: 'CiliumIdentity',
        path: resourcePath(API_VERSION, PLURAL),
        optional: true,
        ...(o.retryInitialMs !== undefined ? { retryInitialMs: o.retryInitialMs } : {}),
        ...(o.retryMaxMs !== undefined ? { retryMaxMs: o.retryMaxMs } : {}),
        ...(o.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {}),
      },
      {
        upsert: (object) => {
          const parsed = this.#parse(object);
          if (parsed) handlers.upsert(parsed);
        },
        delete: (object) => {
          const id = Number(object.metadata.name);
          if (Number.isInteger(id)) handlers.delete(id);
        },
        listed: () => handlers.synced(),
      },
    );
    this.#informer.start();
  }

  async stop(): Promise<void> {
    await this.#informer?.stop();
  }

  async create(object: IdentityObject): Promise<boolean> {
    const namespace = object.labels[NAMESPACE_LABEL];
    try {
      await this.#o.client.create(resourcePath(API_VERSION, PLURAL), {
        apiVersion: API_VERSION,
        kind: 'CiliumIdentity',
        metadata: { name: String(object.id), ...(namespace ? { labels: { 'io.kubernetes.pod.namespace': namespace } } : {}) },
        'security-labels': object.labels,
      });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  async get(id: number): Promise<IdentityObject | undefined> {
    try {
      return this.#parse(await this.#o.client.get(resourcePath(API_VERSION, PLURAL, undefined, String(id))));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  #parse(object: { metadata: { name: string }; [field: string]: unknown }): IdentityObject | undefined {
    const id = Number(object.metadata.name);
    const labels = object['security-labels'];
    if (!/^\d+$/.test(object.metadata.name) || !Number.isSafeInteger(id) || !isStringMap(labels)) {
      this.#log.warn({ name: object.metadata.name }, 'ignoring a CiliumIdentity whose name is not a number or whose security-labels are not a string map');
      return undefined;
    }
    return { id, labels };
  }
}

function isStringMap(value: unknown): value is Labels {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
