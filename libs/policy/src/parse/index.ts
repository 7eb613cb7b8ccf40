// Entry point of the policy parsers: dispatch on apiVersion/kind, collect every error.
import type { ParseResult, PolicyRule } from '../model.js';
import { type CiliumKind, parseCiliumPolicy } from './cilium.js';
import { describeValue, isObject, Issues, own } from './issues.js';
import { parseNetworkPolicy } from './k8s.js';

export { PolicyValidationError } from './errors.js';
export type { L7PortRules } from './ports.js';
export { ENTITIES } from './cilium.js';

export interface ParseOptions {
  /** Prefix for every error path, e.g. `documents[2]`. */
  readonly path?: string;
}

const KINDS: Readonly<Record<string, string>> = {
  CiliumNetworkPolicy: 'cilium.io/v2',
  CiliumClusterwideNetworkPolicy: 'cilium.io/v2',
  NetworkPolicy: 'networking.k8s.io/v1',
};
const API_VERSIONS = [...new Set(Object.values(KINDS))];

/**
 * Parses one policy document (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or
 * NetworkPolicy) into rules, or every field error found. Never throws, whatever the input.
 */
export function parsePolicyDocument(doc: unknown, options: ParseOptions = {}): ParseResult {
  const issues = new Issues(options.path ?? '');
  let rules: PolicyRule[] = [];
  try {
    rules = parseDocument(doc, issues);
  } catch (error) {
    // A parser bug must not take down an import or the agent; report it like a field error.
    issues.error('', `internal parser error: ${error instanceof Error ? error.message : String(error)}`);
  }
  return issues.failed ? { ok: false, errors: issues.list() } : { ok: true, rules };
}

function parseDocument(doc: unknown, issues: Issues): PolicyRule[] {
  if (!isObject(doc)) {
    issues.error('', `must be a policy document object (apiVersion, kind, metadata, spec), got ${describeValue(doc)}`);
    return [];
  }
  const kind = own(doc, 'kind');
  const apiVersion = own(doc, 'apiVersion');
  const known = typeof kind === 'string' && Object.prototype.hasOwnProperty.call(KINDS, kind);
  if (typeof apiVersion !== 'string' || !API_VERSIONS.includes(apiVersion)) {
    issues.error('apiVersion', `${apiVersion === undefined ? 'required' : `unsupported: ${describeValue(apiVersion)}`} (one of ${API_VERSIONS.join(', ')})`);
  } else if (known && KINDS[kind] !== apiVersion) {
    issues.error('apiVersion', `${kind} is ${KINDS[kind]}, not ${apiVersion}`);
  }
  if (!known) {
    const choices = Object.keys(KINDS).join(', ');
    issues.error('kind', `${kind === undefined ? 'required' : `unsupported: ${describeValue(kind)}`} (one of ${choices})`);
    return [];
  }
  if (kind === 'NetworkPolicy') return parseNetworkPolicy(doc, issues);
  return parseCiliumPolicy(doc, kind as CiliumKind, issues);
}
