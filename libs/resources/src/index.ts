/**
 * @cilia/resources — standalone resources: the manifest directory `ResourceSource` and the
 * controller that makes endpoints follow Pods. Both are default plugins of the agent.
 */
export { ManifestDirectorySource, formatInvalid, type InvalidManifest, type ManifestObjectRef, type ManifestsReport, type ManifestSourceOptions } from './manifest-source.js';
export { manifestsConfig, manifestsPlugin } from './plugin.js';
export { OwnedPodsFile, type OwnedPods } from './owned-pods.js';
export { PodEndpointController, podEndpointLabels, podNamedPorts, type PodEndpointControllerOptions } from './pod-endpoints.js';
export { podEndpointsPlugin } from './pod-endpoints-plugin.js';
export { MANIFEST_KINDS } from './schema.js';
