/**
 * A Kubernetes API server for tests (see {@link KubeApiServer}), and kubectl — Debian's
 * `kubernetes-client`, which the bootstrap unpacks — to drive it as a real client.
 */
export { KubeApiServer, type KubeApiServerOptions, type RequestRecord } from './server.js';
export { kubectl, KUBECTL, type KubectlResult } from './kubectl.js';
export type { KubeJson } from './store.js';
