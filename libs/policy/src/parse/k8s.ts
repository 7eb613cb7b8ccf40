// Kubernetes NetworkPolicy (networking.k8s.io/v1) → one PolicyRule, with Kubernetes semantics
// settled here: namespace scoping, policyTypes defaults, `from`/`to` peers and empty rules.
import type { EndpointSelector, Peer, PeerRule, PolicyRule } from '../model.js';
import { cidrContains, parseCidr } from './cidr.js';
import {
  checkFields, describeValue, field, has, index, isObject, type Issues, type JsonObject, optionalList, own,
} from './issues.js';
import { parseMetadata, ruleId } from './metadata.js';
import { parseK8sPorts } from './ports.js';
import {
  ANY_NAMESPACE, k8sKey, NAMESPACE_LABELS_PREFIX, namespaceIs, parseSelector, withRequirements,
} from './selector.js';

const POLICY_TYPES = ['Ingress', 'Egress'] as const;
type PolicyType = (typeof POLICY_TYPES)[number];

const podKey = k8sKey('k8s:');
const namespaceKey = k8sKey(NAMESPACE_LABELS_PREFIX);

export function parseNetworkPolicy(doc: JsonObject, issues: Issues): PolicyRule[] {
  checkFields(doc, '', issues, ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const metadata = parseMetadata(doc, issues, true);
  const namespace = metadata?.namespace ?? 'default';
  const spec = own(doc, 'spec');
  if (!isObject(spec)) {
    issues.error('spec', spec === undefined ? 'required (with a podSelector)' : `must be an object, got ${describeValue(spec)}`);
    return [];
  }
  const before = issues.errors.length;
  checkFields(spec, 'spec', issues, ['podSelector', 'policyTypes', 'ingress', 'egress']);
  const rawSubject = own(spec, 'podSelector');
  let subject: EndpointSelector | undefined;
  if (rawSubject === undefined || rawSubject === null) {
    issues.error('spec.podSelector', 'required (use {} to select every pod of the namespace)');
  } else {
    const selector = parseSelector(rawSubject, 'spec.podSelector', issues, podKey);
    if (selector) subject = withRequirements(selector, namespaceIs(namespace));
  }
  const ingressList = optionalList(spec, 'ingress', 'spec', issues) ?? [];
  const egressList = optionalList(spec, 'egress', 'spec', issues) ?? [];
  const types = parsePolicyTypes(spec, issues, egressList.length > 0);
  const ingress = ingressList.map((item: unknown, i) => parseRule(item, index('spec.ingress', i), 'from', namespace, issues));
  const egress = egressList.map((item: unknown, i) => parseRule(item, index('spec.egress', i), 'to', namespace, issues));
  if (issues.errors.length > before || !metadata || !subject || !types) return [];
  const notes: string[] = [];
  if (!types.has('Ingress') && ingressList.length > 0) notes.push('spec.ingress: ignored, policyTypes does not include Ingress');
  if (!types.has('Egress') && egressList.length > 0) notes.push('spec.egress: ignored, policyTypes does not include Egress');
  return [{
    id: ruleId('NetworkPolicy', metadata),
    origin: { kind: 'NetworkPolicy', name: metadata.name, namespace },
    subject,
    ingress: types.has('Ingress') ? ingress.filter(isDefined) : [],
    ingressDeny: [],
    egress: types.has('Egress') ? egress.filter(isDefined) : [],
    egressDeny: [],
    enforces: { ingress: types.has('Ingress'), egress: types.has('Egress') },
    ingressRequires: [],
    egressRequires: [],
    notes,
  }];
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

/** Absent or empty: Ingress, plus Egress when there are egress rules (Kubernetes' defaulting). */
function parsePolicyTypes(spec: JsonObject, issues: Issues, hasEgressRules: boolean): Set<PolicyType> | undefined {
  const list = optionalList(spec, 'policyTypes', 'spec', issues);
  if (has(spec, 'policyTypes') && list === undefined) return undefined;
  if (!list || list.length === 0) return new Set<PolicyType>(hasEgressRules ? ['Ingress', 'Egress'] : ['Ingress']);
  const types = new Set<PolicyType>();
  let valid = true;
  list.forEach((item: unknown, i) => {
    const at = index('spec.policyTypes', i);
    if (typeof item !== 'string' || !(POLICY_TYPES as readonly string[]).includes(item)) {
      issues.error(at, `must be Ingress or Egress, got ${describeValue(item)}`);
      valid = false;
    } else if (types.has(item as PolicyType)) {
      issues.error(at, `${item} is listed twice`);
      valid = false;
    } else {
      types.add(item as PolicyType);
    }
  });
  return valid ? types : undefined;
}

/** An ingress (`from`) or egress (`to`) rule: no peers → every peer; no ports → every port. */
function parseRule(value: unknown, path: string, peersKey: 'from' | 'to', namespace: string, issues: Issues): PeerRule | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {${peersKey}, ports}, got ${describeValue(value)}`);
    return undefined;
  }
  const before = issues.errors.length;
  checkFields(value, path, issues, [peersKey, 'ports']);
  const list = optionalList(value, peersKey, path, issues);
  const peers = (list ?? []).map((item: unknown, i) => parsePeer(item, index(field(path, peersKey), i), namespace, issues));
  const ports = parseK8sPorts(optionalList(value, 'ports', path, issues) ?? [], field(path, 'ports'), issues);
  if (issues.errors.length > before) return undefined;
  return { peers: peers.length === 0 ? 'all' : peers.filter(isDefined), ports, path };
}

/**
 * podSelector only → pods of the policy's namespace; namespaceSelector only → every pod of the
 * matching namespaces; both → ANDed; ipBlock → a CIDR peer. Namespace selectors also require
 * the pod namespace label, so they never select identities that are not pods.
 */
function parsePeer(value: unknown, path: string, namespace: string, issues: Issues): Peer | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {podSelector, namespaceSelector} or {ipBlock}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['podSelector', 'namespaceSelector', 'ipBlock']);
  const hasPods = has(value, 'podSelector');
  const hasNamespaces = has(value, 'namespaceSelector');
  if (has(value, 'ipBlock')) {
    if (hasPods || hasNamespaces) {
      issues.error(field(path, 'ipBlock'), 'cannot be combined with podSelector or namespaceSelector in one peer');
      return undefined;
    }
    return parseIpBlock(own(value, 'ipBlock'), field(path, 'ipBlock'), issues);
  }
  if (!hasPods && !hasNamespaces) {
    issues.error(path, 'must specify podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  const pods = hasPods ? parseSelector(own(value, 'podSelector'), field(path, 'podSelector'), issues, podKey) : { requirements: [] };
  const namespaces = hasNamespaces
    ? parseSelector(own(value, 'namespaceSelector'), field(path, 'namespaceSelector'), issues, namespaceKey)
    : undefined;
  if (!pods || (hasNamespaces && !namespaces)) return undefined;
  const scope = namespaces ? [...namespaces.requirements, ANY_NAMESPACE] : [namespaceIs(namespace)];
  return { kind: 'endpoints', selector: withRequirements(pods, ...scope) };
}

/** ipBlock {cidr, except}: each except a strict subset of cidr, as Kubernetes validates. */
function parseIpBlock(value: unknown, path: string, issues: Issues): Peer | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {cidr, except}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['cidr', 'except']);
  const rawCidr = own(value, 'cidr');
  const cidrPath = field(path, 'cidr');
  if (typeof rawCidr !== 'string') {
    issues.error(cidrPath, rawCidr === undefined ? 'required' : `must be a CIDR string, got ${describeValue(rawCidr)}`);
    return undefined;
  }
  const cidr = parseCidr(rawCidr);
  if ('problem' in cidr) {
    issues.error(cidrPath, cidr.problem);
    return undefined;
  }
  const except: string[] = [];
  let valid = true;
  (optionalList(value, 'except', path, issues) ?? []).forEach((item: unknown, i) => {
    const at = index(field(path, 'except'), i);
    const inner = typeof item === 'string' ? parseCidr(item) : { problem: `must be a CIDR string, got ${describeValue(item)}` };
    if ('problem' in inner) {
      issues.error(at, inner.problem);
      valid = false;
    } else if (!cidrContains(cidr, inner) || inner.length === cidr.length) {
      issues.error(at, `must be a strict subset of cidr ${cidr.cidr}, got ${inner.cidr}`);
      valid = false;
    } else if (!except.includes(inner.cidr)) {
      except.push(inner.cidr);
    }
  });
  return valid ? { kind: 'cidr', cidr: cidr.cidr, except } : undefined;
}
