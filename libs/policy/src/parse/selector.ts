// Label selectors (matchLabels + matchExpressions) into canonical EndpointSelectors over Cilium
// label keys (`source:key`).
import type { EndpointSelector, LabelRequirement } from '../model.js';
import {
  checkFields, describeValue, field, index, isObject, type Issues, type JsonObject, own,
} from './issues.js';
import { labelKeyProblem, labelValueProblem } from './names.js';

/** The label every pod identity carries with its namespace. */
export const NAMESPACE_KEY = 'k8s:io.kubernetes.pod.namespace';
/** Prefix of the labels an identity inherits from its namespace's labels. */
export const NAMESPACE_LABELS_PREFIX = 'k8s:io.cilium.k8s.namespace.labels.';

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
type Operator = (typeof OPERATORS)[number];

/**
 * How a source's label keys become Cilium keys. Returns the key, or the reason it is invalid.
 */
export type KeyMapper = (raw: string) => { key: string } | { problem: string };

const SOURCE = /^[A-Za-z0-9][-A-Za-z0-9_.]*$/;
/** Sources whose keys and values follow Kubernetes label syntax. */
const K8S_SYNTAX_SOURCES = new Set(['k8s', 'any']);

/**
 * CiliumNetworkPolicy keys: `source:key` kept as written, a bare `key` matches any source
 * (`any:key`), as Cilium does for selectors written without a source.
 */
export const ciliumKey: KeyMapper = (raw) => {
  const colon = raw.indexOf(':');
  if (colon < 0) {
    const problem = labelKeyProblem(raw);
    return problem ? { problem } : { key: `any:${raw}` };
  }
  const source = raw.slice(0, colon);
  const name = raw.slice(colon + 1);
  if (!SOURCE.test(source)) return { problem: `${JSON.stringify(raw)} has an invalid label source ${JSON.stringify(source)} (expected e.g. k8s:app)` };
  if (K8S_SYNTAX_SOURCES.has(source)) {
    const problem = labelKeyProblem(name);
    return problem ? { problem } : { key: raw };
  }
  if (name.length === 0 || /\s/.test(name)) return { problem: `${JSON.stringify(raw)} has an empty or blank key after the source` };
  return { key: raw };
};

/** Kubernetes selector keys under a fixed Cilium prefix (`k8s:` for pods, namespace labels). */
export function k8sKey(prefix: string): KeyMapper {
  return (raw) => {
    const problem = labelKeyProblem(raw);
    return problem ? { problem } : { key: `${prefix}${raw}` };
  };
}

function needsK8sValueSyntax(key: string): boolean {
  return K8S_SYNTAX_SOURCES.has(key.slice(0, key.indexOf(':')));
}

/**
 * Parses a LabelSelector at `path`. Errors go to `issues`; the result is undefined when the
 * value is not a selector at all, else the canonical selector of the valid parts.
 */
export function parseSelector(value: unknown, path: string, issues: Issues, mapKey: KeyMapper): EndpointSelector | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be a label selector object (matchLabels, matchExpressions), got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['matchLabels', 'matchExpressions']);
  const requirements: LabelRequirement[] = [];
  parseMatchLabels(own(value, 'matchLabels'), field(path, 'matchLabels'), issues, mapKey, requirements);
  parseMatchExpressions(own(value, 'matchExpressions'), field(path, 'matchExpressions'), issues, mapKey, requirements);
  return canonicalSelector(requirements);
}

function parseMatchLabels(value: unknown, path: string, issues: Issues, mapKey: KeyMapper, out: LabelRequirement[]): void {
  if (value === undefined || value === null) return;
  if (!isObject(value)) {
    issues.error(path, `must be an object of label key → value, got ${describeValue(value)}`);
    return;
  }
  for (const [rawKey, rawValue] of Object.entries(value)) {
    const at = field(path, rawKey);
    const mapped = mapKey(rawKey);
    if ('problem' in mapped) {
      issues.error(at, mapped.problem);
      continue;
    }
    if (typeof rawValue !== 'string') {
      issues.error(at, `label value must be a string (quote numbers and booleans), got ${describeValue(rawValue)}`);
      continue;
    }
    const problem = needsK8sValueSyntax(mapped.key) ? labelValueProblem(rawValue) : undefined;
    if (problem) {
      issues.error(at, problem);
      continue;
    }
    out.push({ key: mapped.key, operator: 'In', values: [rawValue] });
  }
}

function parseMatchExpressions(value: unknown, path: string, issues: Issues, mapKey: KeyMapper, out: LabelRequirement[]): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    issues.error(path, `must be a list of {key, operator, values}, got ${describeValue(value)}`);
    return;
  }
  value.forEach((expression: unknown, i) => {
    const requirement = parseExpression(expression, index(path, i), issues, mapKey);
    if (requirement) out.push(requirement);
  });
}

function parseExpression(value: unknown, path: string, issues: Issues, mapKey: KeyMapper): LabelRequirement | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {key, operator, values}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['key', 'operator', 'values']);
  const key = expressionKey(value, path, issues, mapKey);
  const operator = expressionOperator(value, path, issues);
  const values = expressionValues(value, path, issues, key, operator);
  if (key === undefined || operator === undefined || values === undefined) return undefined;
  return { key, operator, values };
}

function expressionKey(value: JsonObject, path: string, issues: Issues, mapKey: KeyMapper): string | undefined {
  const raw = own(value, 'key');
  const at = field(path, 'key');
  if (typeof raw !== 'string') {
    issues.error(at, raw === undefined ? 'required' : `must be a string, got ${describeValue(raw)}`);
    return undefined;
  }
  const mapped = mapKey(raw);
  if ('problem' in mapped) {
    issues.error(at, mapped.problem);
    return undefined;
  }
  return mapped.key;
}

function expressionOperator(value: JsonObject, path: string, issues: Issues): Operator | undefined {
  const raw = own(value, 'operator');
  const at = field(path, 'operator');
  if (typeof raw === 'string' && (OPERATORS as readonly string[]).includes(raw)) return raw as Operator;
  issues.error(at, raw === undefined ? `required (one of ${OPERATORS.join(', ')})` : `must be one of ${OPERATORS.join(', ')}, got ${describeValue(raw)}`);
  return undefined;
}

function expressionValues(
  value: JsonObject,
  path: string,
  issues: Issues,
  key: string | undefined,
  operator: Operator | undefined,
): readonly string[] | undefined {
  const raw = own(value, 'values');
  const at = field(path, 'values');
  if (raw !== undefined && raw !== null && !Array.isArray(raw)) {
    issues.error(at, `must be a list of strings, got ${describeValue(raw)}`);
    return undefined;
  }
  const list: readonly unknown[] = Array.isArray(raw) ? raw : [];
  if (operator === 'Exists' || operator === 'DoesNotExist') {
    if (list.length > 0) {
      issues.error(at, `must be empty for operator ${operator}`);
      return undefined;
    }
    return [];
  }
  if (operator !== undefined && list.length === 0) {
    issues.error(at, `needs at least one value for operator ${operator}`);
    return undefined;
  }
  const values: string[] = [];
  let valid = true;
  list.forEach((item, i) => {
    if (typeof item !== 'string') {
      issues.error(index(at, i), `must be a string, got ${describeValue(item)}`);
      valid = false;
      return;
    }
    const problem = key !== undefined && needsK8sValueSyntax(key) ? labelValueProblem(item) : undefined;
    if (problem) {
      issues.error(index(at, i), problem);
      valid = false;
      return;
    }
    values.push(item);
  });
  return valid ? sortedUnique(values) : undefined;
}

function sortedUnique(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareText);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareRequirements(a: LabelRequirement, b: LabelRequirement): number {
  return (
    compareText(a.key, b.key) ||
    compareText(a.operator, b.operator) ||
    compareText(a.values.join('\u0000'), b.values.join('\u0000'))
  );
}

/** Sorted by key, operator, values; duplicates dropped; values sorted and unique. */
export function canonicalSelector(requirements: readonly LabelRequirement[]): EndpointSelector {
  const normalized = requirements.map((r) => ({ key: r.key, operator: r.operator, values: sortedUnique(r.values) }));
  normalized.sort(compareRequirements);
  const unique = normalized.filter((r, i) => i === 0 || compareRequirements(normalized[i - 1]!, r) !== 0);
  return { requirements: unique };
}

/** `selector` ANDed with more requirements, canonical. */
export function withRequirements(selector: EndpointSelector, ...more: LabelRequirement[]): EndpointSelector {
  return canonicalSelector([...selector.requirements, ...more]);
}

/** The key without its source: `k8s:app` → `app`. */
export function keyName(key: string): string {
  return key.slice(key.indexOf(':') + 1);
}

/** Whether some requirement is on `name` under any source. */
export function constrainsKeyName(selector: EndpointSelector, name: string): boolean {
  return selector.requirements.some((r) => keyName(r.key) === name);
}

/** Whether the selector names a reserved identity label (`reserved:host`, ...). */
export function selectsReserved(selector: EndpointSelector): boolean {
  return selector.requirements.some((r) => r.key.startsWith('reserved:'));
}

export function namespaceIs(namespace: string): LabelRequirement {
  return { key: NAMESPACE_KEY, operator: 'In', values: [namespace] };
}

export const ANY_NAMESPACE: LabelRequirement = { key: NAMESPACE_KEY, operator: 'Exists', values: [] };
