import { isIPv4 } from 'node:net';
import { z, type KubeObject, type Service, type ServiceBackend, type ServiceFrontend } from '@cilia/core';
import { DEFAULT_AFFINITY_SECONDS, ipv4, LB_ALGORITHMS, MAX_AFFINITY_SECONDS, port, zodProblems, type LbAlgorithm, type LbProblem, type LbProtocol } from './model.js';

/** The label kube-proxy (and Cilium) honour: a Service carrying it belongs to the proxy it names. */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
/** Per-service backend selection, as Cilium reads it. */
export const LB_ALGORITHM_ANNOTATION = 'service.cilium.io/lb-algorithm';
/** The label linking an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** How Services become frontends on this node. */
export interface KubeServiceOptions {
  /** This node's IPv4 addresses: a NodePort is a frontend on each. */
  readonly nodeAddresses: readonly string[];
  /** Inclusive NodePort range (Kubernetes' default 30000-32767). */
  readonly nodePortRange: readonly [number, number];
  /** This proxy's name; a Service labelled for another proxy (or for any, when empty) is skipped. */
  readonly serviceProxyName: string;
  /** Selection when the Service has no annotation. */
  readonly defaultAlgorithm: LbAlgorithm;
}

/** One port of a Service. */
export interface KubeServicePort {
  readonly name: string;
  readonly protocol: LbProtocol;
  readonly port: number;
  /** A number, or the name of a port in the EndpointSlices. */
  readonly targetPort: number | string;
  readonly nodePort?: number;
}

/** A Service, validated. */
export interface KubeService {
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  readonly clusterIPs: readonly string[];
  readonly ports: readonly KubeServicePort[];
  readonly externalIPs: readonly string[];
  readonly loadBalancerIPs: readonly string[];
  readonly sessionAffinitySeconds: number;
  readonly externalTrafficPolicy: 'Cluster' | 'Local';
  readonly internalTrafficPolicy: 'Cluster' | 'Local';
  readonly algorithm: LbAlgorithm;
  /** What of it is not load-balanced, and why (IPv6 addresses, SCTP ports). */
  readonly notes: readonly string[];
}

/** One endpoint of an EndpointSlice (its first address, as Kubernetes says consumers use). */
export interface KubeSliceEndpoint {
  readonly address: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
}

/** An EndpointSlice of IPv4 addresses, validated. */
export interface KubeEndpointSlice {
  readonly namespace: string;
  readonly name: string;
  /** The Service it belongs to (`kubernetes.io/service-name`). */
  readonly service: string;
  readonly ports: readonly { readonly name: string; readonly port: number; readonly protocol: LbProtocol | 'SCTP' }[];
  readonly endpoints: readonly KubeSliceEndpoint[];
}

export type ParsedKubeService = { readonly service: KubeService } | { readonly skipped: string } | { readonly problems: readonly LbProblem[] };
export type ParsedEndpointSlice = { readonly slice: KubeEndpointSlice } | { readonly skipped: string } | { readonly problems: readonly LbProblem[] };

const servicePort = z.looseObject({
  name: z.string().optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
  port,
  targetPort: z.union([port, z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a port number or an IANA port name').max(15)]).optional(),
  nodePort: port.optional(),
});

const serviceSpec = z.looseObject({
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
  clusterIP: z.string().optional(),
  clusterIPs: z.array(z.string()).optional(),
  ports: z.array(servicePort).optional(),
  externalIPs: z.array(z.string()).optional(),
  sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
  sessionAffinityConfig: z
    .looseObject({ clientIP: z.looseObject({ timeoutSeconds: z.number().int().min(1).max(MAX_AFFINITY_SECONDS).optional() }).optional() })
    .optional(),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
  allocateLoadBalancerNodePorts: z.boolean().optional(),
});

const serviceObject = z.looseObject({
  metadata: z.looseObject({
    annotations: z.record(z.string(), z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  spec: serviceSpec,
  status: z
    .looseObject({ loadBalancer: z.looseObject({ ingress: z.array(z.looseObject({ ip: z.string().optional(), hostname: z.string().optional() })).optional() }).optional() })
    .optional(),
});

/**
 * Validates a `v1` Service for the load balancer. ExternalName and headless (`clusterIP: None`)
 * Services, and Services labelled for another proxy, are skipped (with the reason); anything
 * malformed is refused with its field path.
 */
export function parseKubeService(object: KubeObject, options: Pick<KubeServiceOptions, 'nodePortRange' | 'serviceProxyName' | 'defaultAlgorithm'>): ParsedKubeService {
  const proxy = object.metadata.labels?.[SERVICE_PROXY_NAME_LABEL];
  if (proxy !== undefined && proxy !== options.serviceProxyName) {
    return { skipped: `labelled ${SERVICE_PROXY_NAME_LABEL}=${proxy}: left to that proxy` };
  }
  const r = serviceObject.safeParse(object);
  if (!r.success) return { problems: zodProblems(r.error) };
  const spec = r.data.spec;
  if (spec.type === 'ExternalName') return { skipped: 'type ExternalName: resolved by DNS, not load-balanced' };
  const problems: LbProblem[] = [];
  const notes: string[] = [];

  const clusterIPs = [...new Set([...(spec.clusterIP !== undefined ? [spec.clusterIP] : []), ...(spec.clusterIPs ?? [])])];
  if (clusterIPs.includes('None')) return { skipped: 'headless (clusterIP: None): no virtual IP to balance' };
  const v4: string[] = [];
  clusterIPs.forEach((ip) => {
    if (ip === '') return;
    if (isIPv4(ip)) v4.push(ip);
    else if (ip.includes(':')) notes.push(`cluster IP ${ip}: IPv6 is not load-balanced yet`);
    else problems.push({ path: spec.clusterIP === ip ? 'spec.clusterIP' : `spec.clusterIPs[${spec.clusterIPs!.indexOf(ip)}]`, reason: `"${ip}" is not an IP address` });
  });
  if (spec.type === 'ClusterIP' && clusterIPs.filter((ip) => ip !== '').length === 0) {
    problems.push({ path: 'spec.clusterIP', reason: 'required for type ClusterIP (no API server allocates one here)' });
  }

  const ports = spec.ports ?? [];
  if (ports.length === 0) problems.push({ path: 'spec.ports', reason: 'a Service needs at least one port' });
  const names = new Map<string, number>();
  const pairs = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  const [lo, hi] = options.nodePortRange;
  const needsNodePort = spec.type === 'NodePort' || (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
  const out: KubeServicePort[] = [];
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    const name = p.name ?? '';
    if (ports.length > 1 && name === '') problems.push({ path: `${at}.name`, reason: 'required when a Service has more than one port' });
    if (names.has(name) && name !== '') problems.push({ path: `${at}.name`, reason: `duplicate port name "${name}" (also spec.ports[${names.get(name)}])` });
    names.set(name, i);
    const pair = `${p.port}/${p.protocol}`;
    if (pairs.has(pair)) problems.push({ path: `${at}.port`, reason: `duplicate port ${pair} (also spec.ports[${pairs.get(pair)}])` });
    pairs.set(pair, i);
    if (p.nodePort !== undefined) {
      if (spec.type === 'ClusterIP') problems.push({ path: `${at}.nodePort`, reason: 'only a NodePort or LoadBalancer Service has node ports' });
      else if (p.nodePort < lo || p.nodePort > hi) problems.push({ path: `${at}.nodePort`, reason: `${p.nodePort} is outside the node port range ${lo}-${hi}` });
      const np = `${p.nodePort}/${p.protocol}`;
      if (nodePorts.has(np)) problems.push({ path: `${at}.nodePort`, reason: `duplicate node port ${np} (also spec.ports[${nodePorts.get(np)}])` });
      nodePorts.set(np, i);
    } else if (needsNodePort) {
      problems.push({ path: `${at}.nodePort`, reason: `required for type ${spec.type} (no API server allocates one here; range ${lo}-${hi})` });
    }
    if (p.protocol === 'SCTP') {
      notes.push(`port ${pair}: SCTP is not load-balanced`);
      return;
    }
    out.push({ name, protocol: p.protocol, port: p.port, targetPort: p.targetPort ?? p.port, ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}) });
  });

  const externalIPs: string[] = [];
  (spec.externalIPs ?? []).forEach((ip, i) => {
    if (isIPv4(ip)) externalIPs.push(ip);
    else if (ip.includes(':')) notes.push(`external IP ${ip}: IPv6 is not load-balanced yet`);
    else problems.push({ path: `spec.externalIPs[${i}]`, reason: `"${ip}" is not an IP address` });
  });
  const loadBalancerIPs: string[] = [];
  if (spec.type === 'LoadBalancer') {
    (r.data.status?.loadBalancer?.ingress ?? []).forEach((ing, i) => {
      if (ing.ip === undefined) return; // a hostname is for DNS
      if (isIPv4(ing.ip)) loadBalancerIPs.push(ing.ip);
      else if (ing.ip.includes(':')) notes.push(`load balancer IP ${ing.ip}: IPv6 is not load-balanced yet`);
      else problems.push({ path: `status.loadBalancer.ingress[${i}].ip`, reason: `"${ing.ip}" is not an IP address` });
    });
  }

  const annotated = r.data.metadata.annotations?.[LB_ALGORITHM_ANNOTATION];
  if (annotated !== undefined && !(LB_ALGORITHMS as readonly string[]).includes(annotated)) {
    problems.push({ path: `metadata.annotations.${LB_ALGORITHM_ANNOTATION}`, reason: `must be one of ${LB_ALGORITHMS.join(', ')}, got "${annotated}"` });
  }
  if (problems.length > 0) return { problems };
  return {
    service: {
      namespace: object.metadata.namespace ?? 'default',
      name: object.metadata.name,
      type: spec.type,
      clusterIPs: v4,
      ports: out,
      externalIPs,
      loadBalancerIPs,
      sessionAffinitySeconds: spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_SECONDS) : 0,
      externalTrafficPolicy: spec.externalTrafficPolicy,
      internalTrafficPolicy: spec.internalTrafficPolicy,
      algorithm: (annotated as LbAlgorithm | undefined) ?? options.defaultAlgorithm,
      notes,
    },
  };
}

const conditions = z.looseObject({ ready: z.boolean().nullish(), serving: z.boolean().nullish(), terminating: z.boolean().nullish() });

const sliceObject = z.looseObject({
  metadata: z.looseObject({ labels: z.record(z.string(), z.string()).optional() }),
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z
    .array(
      z.looseObject({
        addresses: z.array(z.string()).min(1),
        conditions: conditions.optional(),
        nodeName: z.string().optional(),
        zone: z.string().optional(),
      }),
    )
    .nullish(),
  ports: z
    .array(z.looseObject({ name: z.string().nullish(), port: port.nullish(), protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish() }))
    .nullish(),
});

/**
 * Validates a `discovery.k8s.io/v1` EndpointSlice. Slices of IPv6 or FQDN addresses, and slices
 * that name no Service, are skipped; conditions default as Kubernetes says (`ready` unknown counts
 * as ready, `serving` follows `ready`, `terminating` false).
 */
export function parseEndpointSlice(object: KubeObject): ParsedEndpointSlice {
  const r = sliceObject.safeParse(object);
  if (!r.success) return { problems: zodProblems(r.error) };
  const service = r.data.metadata.labels?.[SERVICE_NAME_LABEL];
  if (service === undefined || service === '') return { skipped: `no ${SERVICE_NAME_LABEL} label: belongs to no Service` };
  if (r.data.addressType !== 'IPv4') return { skipped: `addressType ${r.data.addressType}: only IPv4 is load-balanced yet` };
  const problems: LbProblem[] = [];
  const endpoints: KubeSliceEndpoint[] = [];
  (r.data.endpoints ?? []).forEach((e, i) => {
    const address = e.addresses[0]!;
    if (!ipv4.safeParse(address).success) {
      problems.push({ path: `endpoints[${i}].addresses[0]`, reason: `"${address}" is not an IPv4 address (addressType IPv4)` });
      return;
    }
    const ready = e.conditions?.ready ?? true;
    endpoints.push({
      address,
      ready,
      serving: e.conditions?.serving ?? ready,
      terminating: e.conditions?.terminating ?? false,
      ...(e.nodeName ? { nodeName: e.nodeName } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
    });
  });
  const ports: Array<KubeEndpointSlice['ports'][number]> = [];
  (r.data.ports ?? []).forEach((p) => {
    if (p.port === undefined || p.port === null) return; // "all ports": nothing a Service port can map to
    ports.push({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' });
  });
  if (problems.length > 0) return { problems };
  return { slice: { namespace: object.metadata.namespace ?? 'default', name: object.metadata.name, service, ports, endpoints } };
}

/** A slice endpoint's backend state (see `ServiceBackend.state`). */
function backendState(e: KubeSliceEndpoint): ServiceBackend['state'] | undefined {
  if (e.terminating) return e.serving ? 'terminating' : 'maintenance';
  return e.ready ? 'active' : undefined;
}

/** The backends of one Service port, from every slice of the Service. */
export function portBackends(port: KubeServicePort, slices: readonly KubeEndpointSlice[]): ServiceBackend[] {
  const out = new Map<string, ServiceBackend>();
  const rank = { active: 0, terminating: 1, maintenance: 2, quarantined: 3 } as const;
  for (const slice of [...slices].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    // The slice port the Service port maps to: the one named after it (the controller that
    // writes slices resolves a named targetPort per pod into that port), else — a slice written
    // by hand — one named after the targetPort.
    const sp =
      slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol) ??
      (typeof port.targetPort === 'string' ? slice.ports.find((p) => p.name === port.targetPort && p.protocol === port.protocol) : undefined);
    if (!sp) continue;
    for (const e of slice.endpoints) {
      const state = backendState(e);
      if (!state) continue;
      const key = `${e.address}:${sp.port}`;
      const had = out.get(key);
      if (had && rank[had.state] <= rank[state]) continue;
      out.set(key, { address: e.address, port: sp.port, weight: 1, state, ...(e.nodeName ? { nodeName: e.nodeName } : {}), ...(e.zone ? { zone: e.zone } : {}) });
    }
  }
  return [...out.values()];
}

/**
 * Every frontend of a Service on this node, each as one load-balancer `Service`: the cluster
 * IPs, each external IP and load-balancer ingress IP on the Service port, and — for NodePort and
 * LoadBalancer Services — each node address on the node port.
 */
export function kubeServiceFrontends(service: KubeService, slices: readonly KubeEndpointSlice[], options: Pick<KubeServiceOptions, 'nodeAddresses'>): Service[] {
  const out: Service[] = [];
  for (const p of service.ports) {
    const backends = portBackends(p, slices);
    const make = (address: string, port: number, type: ServiceFrontend['type']): Service => ({
      namespace: service.namespace,
      name: service.name,
      frontend: { address, port, protocol: p.protocol, type },
      backends,
      externalTrafficPolicy: service.externalTrafficPolicy,
      internalTrafficPolicy: service.internalTrafficPolicy,
      sessionAffinitySeconds: service.sessionAffinitySeconds,
      algorithm: service.algorithm,
    });
    for (const ip of service.clusterIPs) out.push(make(ip, p.port, 'ClusterIP'));
    for (const ip of service.externalIPs) out.push(make(ip, p.port, 'ExternalIP'));
    for (const ip of service.loadBalancerIPs) out.push(make(ip, p.port, 'LoadBalancer'));
    if (p.nodePort !== undefined) for (const ip of options.nodeAddresses) out.push(make(ip, p.nodePort, 'NodePort'));
  }
  return out;
}
