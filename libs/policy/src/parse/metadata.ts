// `metadata.name` / `metadata.namespace` of a policy document.
import { describeValue, field, isObject, type Issues, type JsonObject, own } from './issues.js';
import { dnsLabelProblem, dnsSubdomainProblem } from './names.js';

export interface PolicyMetadata {
  readonly name: string;
  /** Absent for cluster-wide policies. */
  readonly namespace?: string;
}

/**
 * Namespaced kinds default to the `default` namespace, as kubectl does; a cluster-wide kind
 * rejects a namespace rather than ignoring it, since the author probably meant a namespaced policy.
 * Returns undefined when the name is missing or invalid.
 */
export function parseMetadata(doc: JsonObject, issues: Issues, namespaced: boolean): PolicyMetadata | undefined {
  const metadata = own(doc, 'metadata');
  if (!isObject(metadata)) {
    issues.error('metadata', metadata === undefined ? 'required (with a name)' : `must be an object, got ${describeValue(metadata)}`);
    return undefined;
  }
  const rawName = own(metadata, 'name');
  let name: string | undefined;
  if (typeof rawName !== 'string') {
    issues.error('metadata.name', rawName === undefined ? 'required' : `must be a string, got ${describeValue(rawName)}`);
  } else {
    const problem = dnsSubdomainProblem(rawName);
    if (problem) issues.error('metadata.name', problem);
    else name = rawName;
  }
  const rawNamespace = own(metadata, 'namespace');
  const namespacePath = field('metadata', 'namespace');
  let namespace: string | undefined = namespaced ? 'default' : undefined;
  if (rawNamespace !== undefined && rawNamespace !== null && rawNamespace !== '') {
    if (typeof rawNamespace !== 'string') {
      issues.error(namespacePath, `must be a string, got ${describeValue(rawNamespace)}`);
      return undefined;
    }
    if (!namespaced) {
      issues.error(namespacePath, 'a cluster-wide policy has no namespace');
      return undefined;
    }
    const problem = dnsLabelProblem(rawNamespace);
    if (problem) {
      issues.error(namespacePath, problem);
      return undefined;
    }
    namespace = rawNamespace;
  }
  if (name === undefined) return undefined;
  return namespace === undefined ? { name } : { name, namespace };
}

/** `<kind>/<namespace>/<name>`, `<kind>//<name>` cluster-wide, plus `#<specIndex>`. */
export function ruleId(kind: string, metadata: PolicyMetadata, specIndex?: number): string {
  const base = `${kind}/${metadata.namespace ?? ''}/${metadata.name}`;
  return specIndex === undefined ? base : `${base}#${specIndex}`;
}
