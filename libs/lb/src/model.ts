import { isIPv4 } from 'node:net';
import { formatPath, z, type Service, type ServiceBackend, type ServiceFrontend } from '@cilia/core';

/** A refused input: the field at fault and why. */
export interface LbProblem {
  readonly path: string;
  readonly reason: string;
}

/** The L4 protocols the load balancer translates (the datapath tracks TCP and UDP). */
export const LB_PROTOCOLS = ['TCP', 'UDP'] as const;
export type LbProtocol = (typeof LB_PROTOCOLS)[number];

/** Frontend kinds the load balancer serves (`HostPort` is not one of them yet). */
export const LB_FRONTEND_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP'] as const;

export const LB_ALGORITHMS = ['random', 'maglev'] as const;
export type LbAlgorithm = (typeof LB_ALGORITHMS)[number];

/** Kubernetes' default ClientIP affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_SECONDS = 10800;
/** Kubernetes' upper bound for `sessionAffinityConfig.clientIP.timeoutSeconds` (one day). */
export const MAX_AFFINITY_SECONDS = 86400;

/** `address:port/protocol`: one frontend, the key services are stored and replaced by. */
export function frontendKey(f: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): string {
  return `${f.address}:${f.port}/${f.protocol}`;
}

/** `address:port/protocol` of a backend of a frontend with `protocol`. */
export function backendKey(b: Pick<ServiceBackend, 'address' | 'port'>, protocol: string): string {
  return `${b.address}:${b.port}/${protocol}`;
}

/** Parses `address:port[/protocol]` (protocol default TCP); throws naming what is wrong. */
export function parseAddressPort(text: string, what: string): { address: string; port: number; protocol: LbProtocol } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(TCP|UDP|tcp|udp))?$/.exec(text.trim());
  if (!m || !isIPv4(m[1]!)) throw new TypeError(`${what}: expected IPv4ADDRESS:PORT[/TCP|UDP], got "${text}"`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new TypeError(`${what}: port ${port} is out of range (1-65535)`);
  return { address: m[1]!, port, protocol: (m[3]?.toUpperCase() ?? 'TCP') as LbProtocol };
}

export const ipv4 = z.string().refine((s) => isIPv4(s), 'must be an IPv4 address (IPv6 is not load-balanced yet)');
export const port = z.number().int().min(1).max(65535);

const backendSchema = z.strictObject({
  address: ipv4,
  port,
  weight: z.number().int().min(0).max(65535).default(1),
  state: z.enum(['active', 'terminating', 'quarantined', 'maintenance']).default('active'),
  nodeName: z.string().min(1).optional(),
  zone: z.string().min(1).optional(),
});

/** A service as the API takes it (`POST /v1/services`): the core `Service` with defaults. */
export const serviceSchema = z
  .strictObject({
    namespace: z.string().default(''),
    name: z.string().default(''),
    frontend: z.strictObject({
      address: ipv4,
      port,
      protocol: z.enum(LB_PROTOCOLS).default('TCP'),
      type: z.enum(LB_FRONTEND_TYPES).default('ClusterIP'),
    }),
    backends: z.array(backendSchema).default([]),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    sessionAffinitySeconds: z.number().int().min(0).max(MAX_AFFINITY_SECONDS).default(0),
    algorithm: z.enum(LB_ALGORITHMS).default('random'),
  })
  .superRefine((s, ctx) => {
    const seen = new Map<string, number>();
    s.backends.forEach((b, i) => {
      const key = `${b.address}:${b.port}`;
      const first = seen.get(key);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['backends', i], message: `duplicate backend ${key} (also backends[${first}])` });
      else seen.set(key, i);
    });
  });

/** Validates a service given through the API; defaults filled in. */
export function parseService(input: unknown): { service: Service } | { problems: LbProblem[] } {
  const r = serviceSchema.safeParse(input);
  if (!r.success) return { problems: zodProblems(r.error) };
  return { service: r.data as Service };
}

export function zodProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): LbProblem[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') return { path: formatPath([...path, issue.keys[0]!]), reason: `unknown key${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}` };
    return { path: formatPath(path), reason: issue.message };
  });
}

/**
 * The backends new connections choose from: the active ones with a weight, or — only when
 * there is none — the terminating ones still serving (Kubernetes' rule: a terminating endpoint
 * takes new connections only when no endpoint is ready). Others keep their existing connections
 * and get no new one.
 */
export function selectableBackends<B extends Pick<ServiceBackend, 'state' | 'weight'>>(backends: readonly B[]): B[] {
  const active = backends.filter((b) => b.state === 'active' && b.weight > 0);
  if (active.length > 0) return active;
  return backends.filter((b) => b.state === 'terminating' && b.weight > 0);
}

/**
 * Whether a frontend serves only this node's backends: `externalTrafficPolicy: Local` for what
 * comes from outside (NodePort, LoadBalancer, ExternalIP), `internalTrafficPolicy: Local` for
 * the ClusterIP.
 */
export function servesLocalOnly(service: Pick<Service, 'frontend' | 'externalTrafficPolicy' | 'internalTrafficPolicy'>): boolean {
  return service.frontend.type === 'ClusterIP' ? service.internalTrafficPolicy === 'Local' : service.externalTrafficPolicy === 'Local';
}
