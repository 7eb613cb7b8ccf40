/**
 * The agent API's wire types: what each route on the agent's socket takes and answers. The
 * routes (the agent's server, and the libs that contribute `/v1/endpoints`, `/v1/policy`,
 * `/v1/nodes`, …) import them with `import type`, so a change here that the server does not
 * follow, or the other way round, fails the typecheck on both sides.
 *
 * Domain types the agent's services already define (an `Endpoint`, an `Identity`, …) are
 * answered as they are; they are re-exported from `@cilia/core` under the same names.
 */
import type {
  AgentStatus,
  ApiError,
  Endpoint,
  EndpointCreateRequest,
  Health,
  Identity,
  IpCacheEntry,
  Labels,
  NodeInfo,
  PluginStatus,
  PolicyEnforcementMode,
  PolicyRevision,
  PolicyRuleInfo,
  ResourceRef,
  ServiceBackend,
  ServiceFrontend,
} from '@cilia/core';

export type { AgentStatus, ApiError, Endpoint, EndpointCreateRequest, Health, Identity, IpCacheEntry, Labels, PluginStatus, PolicyRuleInfo, ServiceBackend, ServiceFrontend };

// ---- /v1/status, /v1/plugins, /v1/config ------------------------------------------------

/** Body of `GET /v1/config`. */
export interface ConfigView {
  /** Config files the agent read, preset first. */
  readonly sources: readonly string[];
  /** The effective configuration, defaults applied. */
  readonly config: Readonly<Record<string, unknown>>;
}

// ---- /v1/endpoints ----------------------------------------------------------------------

/** One CNI attachment: a container's interface. `interfaceName` defaults to `eth0`. */
export interface EndpointAttachment {
  readonly containerId: string;
  readonly interfaceName?: string;
}

/** Query of `GET /v1/endpoints`: only the endpoints of this container (and interface). */
export interface EndpointListQuery {
  readonly containerId?: string;
  readonly interfaceName?: string;
}

/** How one direction of an endpoint's policy map is enforced. */
export type PolicyMapMode = 'allow-all' | 'enforce' | 'deny-all';

/** One entry of an endpoint's policy map, read back; a port prefix shows as the range `port..endPort`. */
export interface RealizedPolicyEntry {
  /** The peer identity; 0 is any. */
  readonly identity: number;
  readonly direction: 'ingress' | 'egress';
  /** IP protocol number; 0 is any. */
  readonly protocol: number;
  /** 0 is any port. */
  readonly port: number;
  readonly endPort: number;
  readonly verdict: 'allow' | 'deny';
  /** The L7 proxy port traffic is redirected to; 0 is none. */
  readonly proxyPort: number;
}

/** The `policy` part of `GET /v1/endpoints/:id`: the endpoint's policy map as the datapath holds it. */
export interface RealizedEndpointPolicy {
  readonly revision: PolicyRevision;
  readonly enforcement: { readonly ingress: PolicyMapMode; readonly egress: PolicyMapMode };
  /** Why the endpoint's traffic is dropped (its policy could not be written), if so. */
  readonly failClosed?: string;
  readonly entries: readonly RealizedPolicyEntry[];
}

/** Body of `GET /v1/endpoints/:id`: the endpoint, with its realized policy when policy is enabled. */
export type EndpointDetail = Endpoint & { readonly policy?: RealizedEndpointPolicy };

/** Body of `DELETE /v1/endpoints/:id` (always true: a missing one is a 404) and `DELETE /v1/endpoints?containerId=`. */
export interface EndpointDeleteResponse {
  readonly deleted: boolean;
}

/** Body of `POST /v1/endpoints/gc`: the attachments to keep; every other CNI-created endpoint goes. */
export interface EndpointGcRequest {
  readonly valid: readonly EndpointAttachment[];
}

/** Answer of `POST /v1/endpoints/gc`: the ids of the endpoints deleted. */
export interface EndpointGcResponse {
  readonly deleted: readonly number[];
}

// ---- /v1/nodes ----------------------------------------------------------------------------

/** A node as `GET /v1/nodes` shows it. */
export interface NodeListItem extends NodeInfo {
  /** ISO time the node's agent registered it. */
  readonly registeredAt: string;
  /** Whether it is the node of the agent answering. */
  readonly local: boolean;
}

// ---- /v1/manifests --------------------------------------------------------------------------

/** A manifest file that was refused, as `GET /v1/manifests` lists it. */
export interface InvalidManifest {
  /** Path relative to the manifest directory, e.g. `pods/web.yaml`. */
  readonly file: string;
  /** Field path inside the file, e.g. `metadata.labels.app` (`[1].…` in a multi-document file). */
  readonly path: string;
  readonly reason: string;
  /** 1-based line of the offending field, when known. */
  readonly line?: number;
}

/** An object the manifest directory currently defines, and the file that defines it. */
export interface ManifestObjectRef extends ResourceRef {
  readonly file: string;
}

/** Body of `GET /v1/manifests`. */
export interface ManifestsReport {
  readonly directory: string;
  readonly exists: boolean;
  readonly objects: readonly ManifestObjectRef[];
  readonly invalid: readonly InvalidManifest[];
}

// ---- /v1/policy -------------------------------------------------------------------------------

/** Body of `POST /v1/policy`: policy documents (CiliumNetworkPolicy, …) imported as one change. */
export interface PolicyImportRequest {
  readonly documents: readonly unknown[];
}

/** Answer of `POST /v1/policy`. */
export interface PolicyImportResponse {
  readonly revision: PolicyRevision;
}

/** Body of `GET /v1/policy`. */
export interface PolicyListResponse {
  readonly revision: PolicyRevision;
  readonly enforcement: PolicyEnforcementMode;
  readonly rules: readonly PolicyRuleInfo[];
}

/** What `DELETE /v1/policy` removes: one policy by name (namespace and kind narrowing it), or all. */
export type PolicyDeleteSelector = { readonly name: string; readonly namespace?: string; readonly kind?: string } | { readonly all: true };

/** The query parameters of `DELETE /v1/policy`: `name` (with `namespace`, `kind`), or `all=true`. */
export interface PolicyDeleteQuery {
  readonly name?: string;
  readonly namespace?: string;
  readonly kind?: string;
  readonly all?: string;
}

/** One policy (all its rules) that a delete removed. */
export interface DeletedPolicy {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

/** Answer of `DELETE /v1/policy`. */
export interface PolicyDeleteResponse {
  readonly revision: PolicyRevision;
  readonly deleted: readonly DeletedPolicy[];
}

/** Protocols `POST /v1/policy/trace` takes (in any case). */
export type PolicyTraceProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6' | 'ANY';

/** Body of `POST /v1/policy/trace`: would a packet from `src` to `dst` on `dport`/`protocol` pass? */
export interface PolicyTraceRequest {
  /** Label keys carry their source: `k8s:app`. */
  readonly src: { readonly labels: Labels };
  readonly dst: { readonly labels: Labels };
  /** Destination port (an ICMP type for ICMP); 0 or absent is any. */
  readonly dport?: number;
  /** Default TCP. */
  readonly protocol?: PolicyTraceProtocol;
}

/** One side of a trace: the egress of the source, or the ingress of the destination. */
export interface PolicyDirectionTrace {
  readonly enforced: boolean;
  readonly verdict: 'allowed' | 'denied';
  readonly allowedBy: readonly string[];
  readonly deniedBy: readonly string[];
  /** The explanation, one step a line. */
  readonly lines: readonly string[];
}

/** Answer of `POST /v1/policy/trace`. */
export interface PolicyTraceResponse {
  readonly verdict: 'allowed' | 'denied';
  readonly egress: PolicyDirectionTrace;
  readonly ingress: PolicyDirectionTrace;
}

// ---- /v1/bandwidth ------------------------------------------------------------------------------

/** One direction of an endpoint's limit, read back from the datapath's `cilia_bandwidth` map. */
export interface BandwidthLimit {
  readonly bitsPerSecond: number;
  /** Packets dropped for it: beyond the EDT horizon (egress), above rate and burst (ingress). */
  readonly drops: number;
}

/** An endpoint with a limit in at least one direction. */
export interface BandwidthEndpoint {
  readonly endpointId: number;
  /** The endpoint's Pod, when the agent still has the endpoint. */
  readonly namespace?: string;
  readonly name?: string;
  readonly egress?: BandwidthLimit;
  readonly ingress?: BandwidthLimit;
}

/** A Pod's bandwidth annotation that was refused (its endpoint keeps the limit it had). */
export interface InvalidBandwidthAnnotation {
  /** `namespace/name`. */
  readonly pod: string;
  /** e.g. `metadata.annotations["kubernetes.io/egress-bandwidth"]`. */
  readonly path: string;
  readonly reason: string;
}

/** Body of `GET /v1/bandwidth` (the bandwidth manager plugin). */
export interface BandwidthReport {
  /** Egress EDT: on only with the fq qdisc on the node devices; `reason` says why it is off. */
  readonly egress: { readonly enabled: boolean; readonly reason?: string; readonly devices: readonly string[] };
  /** The ingress limit (an eBPF token bucket, no qdisc). */
  readonly ingress: { readonly enabled: boolean };
  /** Pods' TCP set to BBR. */
  readonly bbr: boolean;
  /** What `cilia_bandwidth` holds, by endpoint id. */
  readonly endpoints: readonly BandwidthEndpoint[];
  readonly invalid: readonly InvalidBandwidthAnnotation[];
}

// ---- /v1/services, /v1/lb (the kube-proxy replacement plugin) ------------------------------

/** A backend of a frontend, with its id in `cilia_lb4_backends`. */
export interface ServiceBackendInfo extends ServiceBackend {
  readonly id: number;
  /** Whether new connections choose it (it is in the frontend's slots); others keep the connections they have. */
  readonly selectable: boolean;
}

/** One frontend (`GET /v1/services`, `/v1/services/:id`), as `cilium-dbg service list` shows it. */
export interface ServiceInfo {
  /** Its id (`rev_nat_index`), stable across agent restarts. */
  readonly id: number;
  readonly frontend: ServiceFrontend;
  /** Who asked for it: `Service NAMESPACE/NAME`, `api`, or `restored` (found in the maps, not claimed yet). */
  readonly owner: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly algorithm?: 'random' | 'maglev';
  readonly sessionAffinitySeconds?: number;
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly internalTrafficPolicy?: 'Cluster' | 'Local';
  readonly backends: readonly ServiceBackendInfo[];
}

/** Body of `GET /v1/services`. */
export interface ServiceListResponse {
  readonly services: readonly ServiceInfo[];
  /** Services and EndpointSlices refused (the field path and the reason), and frontends claimed twice. */
  readonly problems: readonly string[];
  /** Services left alone on purpose (`NAMESPACE/NAME`: why): ExternalName, headless, another proxy's. */
  readonly skipped: Readonly<Record<string, string>>;
}

/** Body of `PUT /v1/services`: a service of the `api` owner, by frontend (defaults: TCP, ClusterIP, weight 1, active). */
export interface ServiceUpsertRequest {
  readonly namespace?: string;
  readonly name?: string;
  readonly frontend: { readonly address: string; readonly port: number; readonly protocol?: 'TCP' | 'UDP'; readonly type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP' };
  readonly backends?: ReadonlyArray<{ readonly address: string; readonly port: number; readonly weight?: number; readonly state?: ServiceBackend['state']; readonly nodeName?: string; readonly zone?: string }>;
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly internalTrafficPolicy?: 'Cluster' | 'Local';
  readonly sessionAffinitySeconds?: number;
  readonly algorithm?: 'random' | 'maglev';
}

/** Query of `DELETE /v1/services`: the frontend `ADDRESS:PORT[/PROTOCOL]` of a service of the `api` owner. */
export interface ServiceDeleteQuery {
  readonly frontend: string;
}

/** Answer of `PUT` and `DELETE /v1/services`. */
export interface ServiceChangeResponse {
  /** The frontend's id: the one it has now (PUT), or had (DELETE). */
  readonly id: number;
  readonly frontend: ServiceFrontend;
}

/** An entry of `cilia_lb4_services`: a frontend's slot 0 (its count, flags) or one of its backend slots. */
export interface LbServiceEntry {
  /** `ADDRESS:PORT/PROTOCOL`. */
  readonly frontend: string;
  readonly slot: number;
  /** Slot 0: the frontend's id; other slots: the same (the frontend they belong to). */
  readonly revNatIndex: number;
  /** Slots ≥ 1: the backend in it. */
  readonly backendId: number;
  /** Slot 0: backends new connections choose from. */
  readonly count: number;
  readonly type: string;
  readonly algorithm: string;
  readonly affinityTimeout: number;
  readonly localOnly: boolean;
}

/** Body of `GET /v1/lb`: the LB maps as written. */
export interface LbMapsReport {
  readonly services: readonly LbServiceEntry[];
  readonly backends: ReadonlyArray<{ readonly id: number; readonly address: string; readonly port: number; readonly protocol: string; readonly state: string }>;
  readonly reverseNat: ReadonlyArray<{ readonly id: number; readonly address: string; readonly port: number }>;
  /** Frontend ids with a Maglev table. */
  readonly maglev: readonly number[];
}

// ---- /v1/bpf/*, /v1/maps, /v1/metrics: what the datapath's maps and the kernel hold --------------

/** One `cilia_ct` entry (`GET /v1/bpf/ct`): a connection in its original direction. */
export interface BpfCtEntry {
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** `TCP`, `UDP`, `ICMP`, or the protocol number. */
  readonly protocol: string;
  /** `established`, `syn-sent`, … */
  readonly state: string;
  /** Seconds until it expires unless traffic refreshes it (negative: expired, not yet collected). */
  readonly expiresInSeconds: number;
  readonly packetsOriginal: number;
  readonly bytesOriginal: number;
  readonly packetsReply: number;
  readonly bytesReply: number;
  readonly sourceIdentity: number;
  /** `fin-original`, `fin-reply`, `snat`. */
  readonly flags: readonly string[];
}

/** One `cilia_snat` entry (`GET /v1/bpf/nat`). */
export interface BpfNatEntry {
  /** `egress`: a pod's tuple → the node's address and port; `ingress`: the reply's tuple → the pod's. */
  readonly direction: 'egress' | 'ingress';
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly protocol: string;
  /** The address and port it translates to. */
  readonly translatedAddress: string;
  readonly translatedPort: number;
  readonly expiresInSeconds: number;
}

/** One `cilia_ipcache` entry (`GET /v1/bpf/ipcache`), as the datapath holds it. */
export interface BpfIpCacheEntry {
  readonly prefix: string;
  readonly identity: number;
  /** The node to tunnel to (`0.0.0.0`: none). */
  readonly tunnelEndpoint: string;
  readonly flags: number;
}

/** One `cilia_endpoints` entry (`GET /v1/bpf/endpoints`). */
export interface BpfEndpointEntry {
  readonly address: string;
  readonly endpointId: number;
  readonly identity: number;
  /** Ifindex of the pod-side interface (in the pod's namespace). */
  readonly ifindex: number;
  /** Ifindex of the host-side veth. */
  readonly hostIfindex: number;
  readonly mac: string;
  readonly hostMac: string;
  /** The entry is the host's own (ENDPOINT_F_HOST). */
  readonly host: boolean;
}

/** A map pinned under the agent's `agent.bpfRoot` (`GET /v1/maps`). */
export interface BpfMapSummary {
  /** Its path under the pin root, e.g. `cilia_ct`. */
  readonly name: string;
  /** `hash`, `lru_hash`, `lpm_trie`, `array`, … */
  readonly type: string;
  /** Entries present now; absent for arrays and ring buffers, whose slots always exist. */
  readonly entries?: number;
  readonly maxEntries: number;
  /** entries / maxEntries, 0..1, for the maps that fill up (hash, LRU, LPM): what Cilium's `cilium_bpf_map_pressure` reports. */
  readonly pressure?: number;
}

/** A program of this agent (`GET /v1/bpf/progs`): one using a map pinned under its pin root. */
export interface BpfProgramSummary {
  readonly id: number;
  readonly name: string;
  readonly type: string;
  readonly tag: string;
  /** Runs counted while `kernel.bpf_stats_enabled` was 1. */
  readonly runCount: number;
  readonly runTimeNs: number;
  /** runTimeNs / runCount (0 when it has not run). */
  readonly averageRunTimeNs: number;
}

/** Body of `GET /v1/bpf/progs`. */
export interface BpfProgramList {
  /** Whether the kernel counts runs now (`sysctl kernel.bpf_stats_enabled=1` turns it on). */
  readonly statsEnabled: boolean;
  readonly programs: readonly BpfProgramSummary[];
}

/** One sample of a metric (`GET /v1/metrics`); histograms give `_bucket`, `_sum` and `_count` samples. */
export interface MetricSampleView {
  /** The sample's name (a histogram's `…_bucket`, `…_sum`, `…_count`). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/** One metric family as `/metrics` exposes it (`GET /v1/metrics`). */
export interface MetricFamilyView {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly samples: readonly MetricSampleView[];
}
