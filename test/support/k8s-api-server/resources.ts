/** One kind of object the test API server serves, as discovery describes it. */
export interface ResourceType {
  /** `''` for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly listKind: string;
  /** The path segment: `pods`, `ciliumnetworkpolicies`. */
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** Whether `/status` is a subresource (writes to the object itself leave `status` alone, and the other way round). */
  readonly status: boolean;
  /** Field selectors it accepts beyond `metadata.name` and `metadata.namespace`. */
  readonly fieldLabels: readonly string[];
  /** A custom resource: its objects are validated and pruned by this schema (openAPIV3Schema). */
  readonly schema?: JsonSchema;
  /** Defined by a CustomResourceDefinition (merge patches only, no strategic merge). */
  readonly custom: boolean;
  /** Kubernetes categories (`all`). */
  readonly categories: readonly string[];
}

/** The subset of OpenAPI v3 schema a structural CRD schema uses. */
export interface JsonSchema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly additionalProperties?: JsonSchema | boolean;
  readonly items?: JsonSchema;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly nullable?: boolean;
  readonly oneOf?: readonly JsonSchema[];
  readonly anyOf?: readonly JsonSchema[];
  readonly description?: string;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-kubernetes-int-or-string'?: boolean;
}

export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

function builtin(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: { shortNames?: string[]; status?: boolean; fieldLabels?: string[]; categories?: string[] } = {},
): ResourceType {
  return {
    group,
    version,
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    status: extra.status ?? false,
    fieldLabels: extra.fieldLabels ?? [],
    custom: false,
    categories: extra.categories ?? [],
  };
}

/**
 * The built-in kinds: what the agent watches and writes (Pods, Namespaces, Nodes, Services,
 * EndpointSlices, NetworkPolicies, Leases) and what its install manifests hold (DaemonSet,
 * ConfigMap, ServiceAccount, RBAC, CRDs).
 */
export function builtinResources(): ResourceType[] {
  return [
    builtin('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], status: true, fieldLabels: ['status.phase'] }),
    builtin('', 'v1', 'Pod', 'pods', true, {
      shortNames: ['po'],
      status: true,
      categories: ['all'],
      fieldLabels: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP'],
    }),
    builtin('', 'v1', 'Node', 'nodes', false, { shortNames: ['no'], status: true, fieldLabels: ['spec.unschedulable'] }),
    builtin('', 'v1', 'Service', 'services', true, { shortNames: ['svc'], status: true, categories: ['all'] }),
    builtin('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'] }),
    builtin('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
    builtin('', 'v1', 'Secret', 'secrets', true, { fieldLabels: ['type'] }),
    builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'] }),
    builtin('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
    builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
    builtin('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, { shortNames: ['netpol'] }),
    builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
    builtin('apps', 'v1', 'DaemonSet', 'daemonsets', true, { shortNames: ['ds'], status: true, categories: ['all'] }),
    builtin('apps', 'v1', 'Deployment', 'deployments', true, { shortNames: ['deploy'], status: true, categories: ['all'] }),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
    builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
    builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
    builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
    builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, { shortNames: ['crd', 'crds'], status: true }),
  ];
}

/** Thrown for a CRD the server cannot serve; the message names the field. */
export class DefinitionError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The resource types a CustomResourceDefinition (apiextensions.k8s.io/v1) defines: one per served version. */
export function resourcesOfDefinition(crd: Record<string, unknown>): ResourceType[] {
  const spec = (crd['spec'] ?? {}) as Record<string, unknown>;
  const names = (spec['names'] ?? {}) as Record<string, unknown>;
  const group = spec['group'];
  const plural = names['plural'];
  const kind = names['kind'];
  if (typeof group !== 'string' || !group.includes('.')) throw new DefinitionError('spec.group', 'should be a domain with at least one dot');
  if (typeof plural !== 'string' || !/^[a-z0-9]+$/.test(plural)) throw new DefinitionError('spec.names.plural', 'must be lowercase letters and digits');
  if (typeof kind !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) throw new DefinitionError('spec.names.kind', 'must be a CamelCase name');
  const name = (crd['metadata'] as { name?: unknown } | undefined)?.name;
  if (name !== `${plural}.${group}`) throw new DefinitionError('metadata.name', `must be spec.names.plural+"."+spec.group (${plural}.${group})`);
  const scope = spec['scope'];
  if (scope !== 'Namespaced' && scope !== 'Cluster') throw new DefinitionError('spec.scope', 'supported values: "Cluster", "Namespaced"');
  const versions = spec['versions'];
  if (!Array.isArray(versions) || versions.length === 0) throw new DefinitionError('spec.versions', 'must have exactly one version marked as storage version');
  if (versions.filter((v) => (v as { storage?: unknown }).storage === true).length !== 1) throw new DefinitionError('spec.versions', 'must have exactly one version marked as storage version');
  const types: ResourceType[] = [];
  versions.forEach((v: Record<string, unknown>, i: number) => {
    if (typeof v['name'] !== 'string' || !/^v\d+((alpha|beta)\d+)?$/.test(v['name'])) throw new DefinitionError(`spec.versions[${i}].name`, 'must be a version like v1, v2beta1');
    const schema = (v['schema'] as { openAPIV3Schema?: JsonSchema } | undefined)?.openAPIV3Schema;
    if (!schema || schema.type !== 'object') throw new DefinitionError(`spec.versions[${i}].schema.openAPIV3Schema`, 'a structural schema of type object is required');
    if (v['served'] !== true) return;
    const subresources = (v['subresources'] ?? {}) as Record<string, unknown>;
    types.push({
      group,
      version: v['name'],
      kind,
      listKind: typeof names['listKind'] === 'string' ? names['listKind'] : `${kind}List`,
      plural,
      singular: typeof names['singular'] === 'string' ? names['singular'] : kind.toLowerCase(),
      namespaced: scope === 'Namespaced',
      shortNames: Array.isArray(names['shortNames']) ? (names['shortNames'] as string[]) : [],
      status: subresources['status'] !== undefined,
      fieldLabels: [],
      schema,
      custom: true,
      categories: Array.isArray(names['categories']) ? (names['categories'] as string[]) : [],
    });
  });
  return types;
}
