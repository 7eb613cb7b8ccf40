import { formatPath, z, type KubeObject, type ResourceKind, type ResourceRef } from '@cilia/core';

/** A refused document: where in it, and why. */
export interface SchemaProblem {
  /** Field path inside the document, e.g. `metadata.labels.app`. */
  readonly path: string;
  /** The same path as keys and indexes (a label key may itself contain dots). */
  readonly segments: readonly PropertyKey[];
  readonly reason: string;
}

function problemsOf(error: z.ZodError): SchemaProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), segments: issue.path, reason: issue.message }));
}

function problem(path: string, reason: string): SchemaProblem {
  return { path, segments: path === '' ? [] : [path], reason };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

const dnsLabel = z
  .string()
  .max(63)
  .regex(DNS_LABEL, 'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit');
const dnsSubdomain = z
  .string()
  .max(253)
  .regex(DNS_SUBDOMAIN, 'must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit');

/** `[prefix/]name` as Kubernetes label keys are written. */
function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key prefix "${prefix}" must be a DNS subdomain`;
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `label key "${key}" must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (after an optional "prefix/")`;
  }
  return undefined;
}

const labelValue = z
  .string()
  .max(63)
  .refine((v) => v === '' || QUALIFIED_NAME.test(v), 'must be empty or letters, digits, "-", "_" or ".", starting and ending with a letter or digit');

const labels = z.record(z.string(), labelValue).superRefine((record, ctx) => {
  for (const key of Object.keys(record)) {
    const problem = labelKeyProblem(key);
    if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
  }
});

function metadata(scope: 'namespaced' | 'cluster', name: z.ZodType<string>) {
  return z.looseObject({
    name,
    namespace:
      scope === 'namespaced'
        ? dnsLabel.optional()
        : z.undefined({ error: 'this kind is cluster-scoped and has no namespace' }).optional(),
    labels: labels.optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  });
}

const portName = z
  .string()
  .max(15)
  .regex(PORT_NAME, 'must be lower-case letters, digits and "-", starting and ending with a letter or digit')
  .refine((v) => /[a-z]/.test(v), 'must contain at least one letter')
  .refine((v) => !v.includes('--'), 'must not contain "--"');

const containerPort = z.looseObject({
  name: portName.optional(),
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
});

const container = z.looseObject({
  name: dnsLabel,
  ports: z.array(containerPort).optional(),
});

const podSpec = z.looseObject({ containers: z.array(container).min(1), hostNetwork: z.boolean().optional() }).superRefine((spec, ctx) => {
  const containerNames = new Map<string, number>();
  const portNames = new Map<string, string>();
  spec.containers.forEach((c, i) => {
    const first = containerNames.get(c.name);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['containers', i, 'name'], message: `duplicate container name "${c.name}" (also containers[${first}])` });
    else containerNames.set(c.name, i);
    (c.ports ?? []).forEach((p, j) => {
      if (p.name === undefined) return;
      const here = `containers[${i}].ports[${j}]`;
      const other = portNames.get(p.name);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['containers', i, 'ports', j, 'name'], message: `duplicate port name "${p.name}" (also ${other})` });
      else portNames.set(p.name, here);
    });
  });
});

interface KindSpec {
  readonly apiVersion: string;
  readonly scope: 'namespaced' | 'cluster';
  readonly schema: z.ZodType;
}

function opaque(scope: 'namespaced' | 'cluster', name: z.ZodType<string> = dnsSubdomain): z.ZodType {
  return z.looseObject({ metadata: metadata(scope, name) });
}

/**
 * Kinds a manifest may hold. Namespace and Pod are checked in full; the others only for
 * apiVersion and metadata until the issues that consume them define their schemas.
 */
const KINDS: Readonly<Record<ResourceKind, KindSpec>> = {
  Namespace: { apiVersion: 'v1', scope: 'cluster', schema: opaque('cluster', dnsLabel) },
  Pod: {
    apiVersion: 'v1',
    scope: 'namespaced',
    schema: z.looseObject({ metadata: metadata('namespaced', dnsSubdomain), spec: podSpec }),
  },
  Node: { apiVersion: 'v1', scope: 'cluster', schema: opaque('cluster') },
  Service: { apiVersion: 'v1', scope: 'namespaced', schema: opaque('namespaced', dnsLabel) },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', scope: 'namespaced', schema: opaque('namespaced') },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', scope: 'namespaced', schema: opaque('namespaced') },
  CiliumNetworkPolicy: { apiVersion: 'cilium.io/v2', scope: 'namespaced', schema: opaque('namespaced') },
  CiliumClusterwideNetworkPolicy: { apiVersion: 'cilium.io/v2', scope: 'cluster', schema: opaque('cluster') },
};

/** Every kind a manifest may hold. */
export const MANIFEST_KINDS = Object.keys(KINDS) as ResourceKind[];

const header = z.looseObject({ apiVersion: z.string(), kind: z.string() });

/** A validated object and its reference. */
export interface ValidatedObject {
  readonly ref: ResourceRef;
  readonly object: KubeObject;
}

/**
 * Validates one parsed YAML document as a Kubernetes object of a supported kind. Namespaced
 * objects get `metadata.namespace: default` when they have none; defaults of the schema
 * (a port's protocol) are filled in.
 */
export function validateObject(document: unknown): ValidatedObject | { readonly problems: readonly SchemaProblem[] } {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return { problems: [problem('', 'expected a mapping with apiVersion, kind and metadata')] };
  }
  const head = header.safeParse(document);
  if (!head.success) return { problems: problemsOf(head.error) };
  const spec = Object.hasOwn(KINDS, head.data.kind) ? KINDS[head.data.kind as ResourceKind] : undefined;
  if (!spec) return { problems: [problem('kind', `unsupported kind "${head.data.kind}"; expected one of ${MANIFEST_KINDS.join(', ')}`)] };
  if (head.data.apiVersion !== spec.apiVersion) {
    return { problems: [problem('apiVersion', `expected "${spec.apiVersion}" for kind ${head.data.kind}, got "${head.data.apiVersion}"`)] };
  }
  const body = spec.schema.safeParse(document);
  if (!body.success) return { problems: problemsOf(body.error) };
  const parsed = body.data as KubeObject;
  const kind = head.data.kind as ResourceKind;
  const namespace = spec.scope === 'namespaced' ? (parsed.metadata.namespace ?? 'default') : undefined;
  const object: KubeObject = namespace === undefined ? parsed : { ...parsed, metadata: { ...parsed.metadata, namespace } };
  return {
    ref: namespace === undefined ? { kind, name: object.metadata.name } : { kind, namespace, name: object.metadata.name },
    object: deepFreeze(object),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
