/**
 * @cilia/k8s — Kubernetes for Cilia: API access with @kubernetes/client-node's credentials
 * (kubeconfig or in-cluster), informers over its ListWatch (bookmarks, re-list on 410 Gone,
 * back-off), and the Kubernetes `ResourceSource`. The plugin is @cilia/plugin-kubernetes.
 */
export { KubeApiError, KubeClient, loadKubeConfig, resourcePath, type KubeConnection, type KubeList, type Query } from './client.js';
export { Informer, type InformerHandlers, type InformerOptions, type InformerStatus } from './informer.js';
export { KUBERNETES_KINDS, KubernetesResourceSource, type KubernetesResourceSourceOptions } from './source.js';
export { KubeCiliumIdentityStore, type KubeCiliumIdentityStoreOptions } from './identities.js';
