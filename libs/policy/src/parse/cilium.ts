// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2) → PolicyRules.
import type { EndpointSelector, Entity, Peer, PeerRule, PolicyRule, PortRule } from '../model.js';
import { cidrContains, parseCidr, type ParsedCidr } from './cidr.js';
import {
  checkFields, describeValue, field, has, index, isObject, type Issues, type JsonObject, optionalBoolean,
  optionalList, optionalObject, optionalString, own,
} from './issues.js';
import { type PolicyMetadata, parseMetadata, ruleId } from './metadata.js';
import { parseCiliumToPorts, parseIcmps } from './ports.js';
import {
  ciliumKey, constrainsKeyName, keyName, namespaceIs, parseSelector, selectsReserved, withRequirements,
} from './selector.js';

export type CiliumKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';

export const ENTITIES: readonly Entity[] = [
  'all', 'world', 'cluster', 'host', 'remote-node', 'health', 'init', 'unmanaged', 'kube-apiserver', 'ingress',
];

const NAMESPACE_NAME = 'io.kubernetes.pod.namespace';

type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';

/** Field names of one section's rules; `from*` for ingress, `to*` for egress. */
interface SectionShape {
  readonly endpoints: string;
  readonly requires: string;
  readonly cidr: string;
  readonly cidrSet: string;
  readonly entities: string;
  readonly deny: boolean;
  readonly unsupported: Readonly<Record<string, string>>;
}

const NOT_YET = 'not supported yet';
const INGRESS_FIELDS = { endpoints: 'fromEndpoints', requires: 'fromRequires', cidr: 'fromCIDR', cidrSet: 'fromCIDRSet', entities: 'fromEntities' };
const EGRESS_FIELDS = { endpoints: 'toEndpoints', requires: 'toRequires', cidr: 'toCIDR', cidrSet: 'toCIDRSet', entities: 'toEntities' };
const SECTIONS: Readonly<Record<Section, SectionShape>> = {
  ingress: { ...INGRESS_FIELDS, deny: false, unsupported: { fromGroups: NOT_YET, fromNodes: NOT_YET, authentication: NOT_YET } },
  ingressDeny: { ...INGRESS_FIELDS, deny: true, unsupported: { fromGroups: NOT_YET, fromNodes: NOT_YET } },
  egress: {
    ...EGRESS_FIELDS, deny: false,
    unsupported: { toFQDNs: `${NOT_YET} (needs the DNS proxy)`, toServices: NOT_YET, toGroups: NOT_YET, toNodes: NOT_YET, authentication: NOT_YET },
  },
  egressDeny: { ...EGRESS_FIELDS, deny: true, unsupported: { toServices: NOT_YET, toGroups: NOT_YET, toNodes: NOT_YET } },
};

interface Context {
  readonly kind: CiliumKind;
  readonly metadata: PolicyMetadata;
  readonly issues: Issues;
}

/** A whole CNP/CCNP document: `spec` and/or `specs`, one PolicyRule per spec. */
export function parseCiliumPolicy(doc: JsonObject, kind: CiliumKind, issues: Issues): PolicyRule[] {
  checkFields(doc, '', issues, ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);
  const metadata = parseMetadata(doc, issues, kind === 'CiliumNetworkPolicy');
  const spec = optionalObject(doc, 'spec', '', issues);
  const specs = optionalList(doc, 'specs', '', issues);
  if (!has(doc, 'spec') && !has(doc, 'specs')) issues.error('spec', 'required: a spec, or a non-empty specs list');
  else if (!has(doc, 'spec') && specs?.length === 0) issues.error('specs', 'must not be empty (or give a spec)');
  if (!metadata) {
    // Still validate the rules, so one run reports every problem of the document; without a
    // valid namespace the namespace checks of the subject are skipped rather than guessed.
    const placeholder: Context = { kind, metadata: { name: 'invalid' }, issues };
    if (spec) parseCiliumRule(spec, 'spec', placeholder);
    specs?.forEach((item: unknown, i) => parseCiliumRule(item, index('specs', i), placeholder, i));
    return [];
  }
  const context: Context = { kind, metadata, issues };
  const rules: PolicyRule[] = [];
  if (spec) {
    const rule = parseCiliumRule(spec, 'spec', context);
    if (rule) rules.push(rule);
  }
  specs?.forEach((item: unknown, i) => {
    const rule = parseCiliumRule(item, index('specs', i), context, i);
    if (rule) rules.push(rule);
  });
  return rules;
}

function parseCiliumRule(value: unknown, path: string, context: Context, specIndex?: number): PolicyRule | undefined {
  const { issues, metadata, kind } = context;
  if (!isObject(value)) {
    issues.error(path, `must be an object (a policy rule with endpointSelector, ingress, egress, ...), got ${describeValue(value)}`);
    return undefined;
  }
  const before = issues.errors.length;
  checkFields(value, path, issues, [
    'endpointSelector', 'nodeSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'enableDefaultDeny', 'description', 'labels',
  ]);
  const subject = parseSubject(value, path, context);
  optionalString(value, 'description', path, issues);
  optionalList(value, 'labels', path, issues);
  const notes: string[] = [];
  const ingressRequires: EndpointSelector[] = [];
  const egressRequires: EndpointSelector[] = [];
  const section = (name: Section, requires: EndpointSelector[]): PeerRule[] => {
    const list = optionalList(value, name, path, issues) ?? [];
    const rules: PeerRule[] = [];
    list.forEach((item: unknown, i) => {
      const parsed = parsePeerRule(item, index(field(path, name), i), SECTIONS[name], context);
      if (!parsed) return;
      rules.push(parsed.rule);
      requires.push(...parsed.requires);
      notes.push(...parsed.notes);
    });
    return rules;
  };
  const ingress = section('ingress', ingressRequires);
  const ingressDeny = section('ingressDeny', ingressRequires);
  const egress = section('egress', egressRequires);
  const egressDeny = section('egressDeny', egressRequires);
  const defaultDeny = parseEnableDefaultDeny(value, path, issues);
  if (issues.errors.length > before || !subject) return undefined;
  return {
    id: ruleId(kind, metadata, specIndex),
    origin: {
      kind,
      name: metadata.name,
      ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }),
      ...(specIndex === undefined ? {} : { specIndex }),
    },
    subject,
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    enforces: {
      ingress: (ingress.length > 0 || ingressDeny.length > 0) && defaultDeny.ingress !== false,
      egress: (egress.length > 0 || egressDeny.length > 0) && defaultDeny.egress !== false,
    },
    ingressRequires,
    egressRequires,
    notes,
  };
}

/** endpointSelector, ANDed with the policy's namespace for a CNP. */
function parseSubject(value: JsonObject, path: string, context: Context): EndpointSelector | undefined {
  const { issues, metadata } = context;
  if (has(value, 'nodeSelector')) {
    issues.error(field(path, 'nodeSelector'), 'not supported yet (host policies); use endpointSelector');
    return undefined;
  }
  const raw = own(value, 'endpointSelector');
  const at = field(path, 'endpointSelector');
  if (raw === undefined || raw === null) {
    issues.error(at, 'required (use {} to select every endpoint)');
    return undefined;
  }
  const selector = parseSelector(raw, at, issues, ciliumKey);
  if (!selector || metadata.namespace === undefined) return selector;
  const namespace = metadata.namespace;
  const elsewhere = selector.requirements.find(
    (r) => keyName(r.key) === NAMESPACE_NAME && r.operator === 'In' && !r.values.includes(namespace),
  );
  if (elsewhere) {
    issues.error(at, `selects namespace ${elsewhere.values.join(', ')}, but a CiliumNetworkPolicy in namespace ${namespace} applies only to endpoints of ${namespace}`);
    return undefined;
  }
  return withRequirements(selector, namespaceIs(namespace));
}

function parseEnableDefaultDeny(value: JsonObject, path: string, issues: Issues): { ingress?: boolean; egress?: boolean } {
  const object = optionalObject(value, 'enableDefaultDeny', path, issues);
  if (!object) return {};
  const at = field(path, 'enableDefaultDeny');
  checkFields(object, at, issues, ['ingress', 'egress']);
  return { ingress: optionalBoolean(object, 'ingress', at, issues), egress: optionalBoolean(object, 'egress', at, issues) };
}

interface ParsedPeerRule {
  readonly rule: PeerRule;
  readonly requires: EndpointSelector[];
  readonly notes: string[];
}

/** One rule of a section. With any L3 field its peers are those (ORed); else 'all' if it has ports; `{}` selects nothing. */
function parsePeerRule(value: unknown, path: string, shape: SectionShape, context: Context): ParsedPeerRule | undefined {
  const { issues } = context;
  if (!isObject(value)) {
    issues.error(path, `must be an object, got ${describeValue(value)}`);
    return undefined;
  }
  const before = issues.errors.length;
  const l3Fields = [shape.endpoints, shape.cidr, shape.cidrSet, shape.entities];
  checkFields(value, path, issues, [...l3Fields, shape.requires, 'toPorts', 'icmps'], shape.unsupported);
  const peers: Peer[] = [];
  for (const raw of listOf(value, shape.endpoints, path, issues)) {
    const selector = parseSelector(raw.value, raw.path, issues, ciliumKey);
    if (selector) peers.push({ kind: 'endpoints', selector: foldNamespace(selector, context) });
  }
  for (const raw of listOf(value, shape.cidr, path, issues)) {
    const cidr = parseCidrText(raw.value, raw.path, issues);
    if (cidr) peers.push({ kind: 'cidr', cidr: cidr.cidr, except: [] });
  }
  for (const raw of listOf(value, shape.cidrSet, path, issues)) {
    const peer = parseCidrSet(raw.value, raw.path, issues);
    if (peer) peers.push(peer);
  }
  for (const raw of listOf(value, shape.entities, path, issues)) {
    if (typeof raw.value === 'string' && (ENTITIES as readonly string[]).includes(raw.value)) {
      peers.push({ kind: 'entity', entity: raw.value as Entity });
    } else {
      issues.error(raw.path, `unknown entity ${describeValue(raw.value)} (one of ${ENTITIES.join(', ')})`);
    }
  }
  const requires: EndpointSelector[] = [];
  for (const raw of listOf(value, shape.requires, path, issues)) {
    const selector = parseSelector(raw.value, raw.path, issues, ciliumKey);
    if (selector) requires.push(foldNamespace(selector, context));
  }
  const { ports, l7, notes } = parsePorts(value, path, issues, shape.deny);
  if (issues.errors.length > before) return undefined;
  const hasL3 = l3Fields.some((name) => has(value, name));
  // Empty lists add nothing: `toPorts: []` must not turn a rule that selects nothing into allow-all.
  const hasL4 = ports.length > 0;
  const rule: PeerRule = {
    peers: hasL3 ? peers : hasL4 ? 'all' : [],
    ports,
    ...(l7.length > 0 ? { l7 } : {}),
    path,
  };
  return { rule, requires, notes };
}

function parsePorts(value: JsonObject, path: string, issues: Issues, deny: boolean) {
  const toPorts = optionalList(value, 'toPorts', path, issues);
  const icmps = optionalList(value, 'icmps', path, issues);
  if (toPorts && icmps && toPorts.length > 0 && icmps.length > 0) {
    issues.error(field(path, 'icmps'), 'cannot be combined with toPorts in one rule; write two rules');
  }
  const ports: PortRule[] = [];
  const parsed = parseCiliumToPorts(toPorts ?? [], field(path, 'toPorts'), issues, deny);
  const icmp = parseIcmps(icmps ?? [], field(path, 'icmps'), issues);
  ports.push(...parsed.ports, ...icmp.ports);
  return { ports, l7: parsed.l7, notes: [...parsed.notes, ...icmp.notes] };
}

function listOf(value: JsonObject, key: string, path: string, issues: Issues): { value: unknown; path: string }[] {
  const list = optionalList(value, key, path, issues) ?? [];
  const at = field(path, key);
  return list.map((item: unknown, i) => ({ value: item, path: index(at, i) }));
}

/**
 * A peer selector of a CNP is scoped to the policy's namespace unless it names a namespace
 * itself or selects reserved identities (which have no namespace), as Cilium does.
 */
function foldNamespace(selector: EndpointSelector, context: Context): EndpointSelector {
  const namespace = context.metadata.namespace;
  if (namespace === undefined || constrainsKeyName(selector, NAMESPACE_NAME) || selectsReserved(selector)) return selector;
  return withRequirements(selector, namespaceIs(namespace));
}

function parseCidrText(value: unknown, path: string, issues: Issues): ParsedCidr | undefined {
  if (typeof value !== 'string') {
    issues.error(path, `must be a CIDR string such as 10.0.0.0/8, got ${describeValue(value)}`);
    return undefined;
  }
  const parsed = parseCidr(value, { allowAddress: true });
  if ('problem' in parsed) {
    issues.error(path, parsed.problem);
    return undefined;
  }
  return parsed;
}

function parseCidrSet(value: unknown, path: string, issues: Issues): Peer | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {cidr, except}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['cidr', 'except'], { cidrGroupRef: NOT_YET, cidrGroupSelector: NOT_YET });
  const rawCidr = own(value, 'cidr');
  const cidr = rawCidr === undefined ? undefined : parseCidrText(rawCidr, field(path, 'cidr'), issues);
  if (rawCidr === undefined) issues.error(field(path, 'cidr'), 'required');
  const except: string[] = [];
  let valid = cidr !== undefined;
  for (const raw of listOf(value, 'except', path, issues)) {
    const inner = parseCidrText(raw.value, raw.path, issues);
    if (!inner) {
      valid = false;
    } else if (cidr && !cidrContains(cidr, inner)) {
      issues.error(raw.path, `${inner.cidr} is not inside ${cidr.cidr}`);
      valid = false;
    } else if (!except.includes(inner.cidr)) {
      except.push(inner.cidr);
    }
  }
  if (!valid || !cidr) return undefined;
  return { kind: 'cidr', cidr: cidr.cidr, except };
}
