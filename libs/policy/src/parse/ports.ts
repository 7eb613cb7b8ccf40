// Port rules: CiliumNetworkPolicy toPorts/icmps and Kubernetes NetworkPolicy ports.
import type { PortProtocol, PortRule } from '../model.js';
import {
  checkFields, describeValue, field, index, isObject, type Issues, type JsonObject, own,
} from './issues.js';
import { portNameProblem } from './names.js';

type Dialect = 'cilium' | 'k8s';

const CILIUM_PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ANY'] as const;
const K8S_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

/** L7 rules of one toPorts entry, kept for the L7 proxy: the ports they apply to and the rules as given. */
export interface L7PortRules {
  readonly ports: readonly PortRule[];
  readonly rules: unknown;
  /** Field path of the rules, e.g. `spec.ingress[0].toPorts[0].rules`. */
  readonly path: string;
}

/** The note of L7 rules no proxy enforces (the engine drops it where the proxy takes them). */
export const l7AtL4Note = (rulesPath: string): string => `${rulesPath}: L7 rules are enforced at L4 until the L7 proxy is available`;

/** A port given as a number or a string: a number, or a named port. */
function parsePortValue(raw: unknown, at: string, issues: Issues, dialect: Dialect): { port: number } | { name: string } | undefined {
  const min = dialect === 'cilium' ? 0 : 1;
  if (typeof raw === 'number') {
    if (Number.isInteger(raw) && raw >= min && raw <= 65535) return { port: raw };
    issues.error(at, `must be a port number ${min}–65535 or a port name, got ${describeValue(raw)}`);
    return undefined;
  }
  if (typeof raw !== 'string') {
    issues.error(at, `must be a port number or a port name, got ${describeValue(raw)}`);
    return undefined;
  }
  if (dialect === 'cilium' && /^\d+$/.test(raw)) {
    const port = Number(raw);
    if (port >= min && port <= 65535) return { port };
    issues.error(at, `port ${raw} is out of range (${min}–65535)`);
    return undefined;
  }
  const problem = portNameProblem(raw);
  if (problem) {
    issues.error(at, problem);
    return undefined;
  }
  return { name: raw };
}

function parseProtocol<P extends string>(object: JsonObject, path: string, issues: Issues, allowed: readonly P[], fallback: P): P | undefined {
  const raw = own(object, 'protocol');
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as P;
  issues.error(field(path, 'protocol'), `must be one of ${allowed.join(', ')}, got ${describeValue(raw)}`);
  return undefined;
}

/** `endPort`: absent, or a port ≥ `port` that needs a numeric `port`. */
function parseEndPort(
  object: JsonObject,
  path: string,
  issues: Issues,
  start: { port: number } | { name: string } | undefined,
  dialect: Dialect,
): number | undefined | false {
  const raw = own(object, 'endPort');
  const at = field(path, 'endPort');
  if (raw === undefined || raw === null || (dialect === 'cilium' && raw === 0)) return undefined;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > 65535) {
    issues.error(at, `must be a port number 1–65535, got ${describeValue(raw)}`);
    return false;
  }
  if (start === undefined) return false;
  if ('name' in start) {
    issues.error(at, `a range needs a numeric port, not the named port ${JSON.stringify(start.name)}`);
    return false;
  }
  if (start.port === 0) {
    issues.error(at, 'a range needs a start port (port 0 means every port)');
    return false;
  }
  if (raw < start.port) {
    issues.error(at, `must be ≥ port (${start.port}), got ${raw}`);
    return false;
  }
  return raw === start.port ? undefined : raw;
}

function portRule(protocol: PortProtocol, start: { port: number } | { name: string }, endPort: number | undefined): PortRule {
  if ('name' in start) return { protocol, port: 0, name: start.name };
  return endPort === undefined ? { protocol, port: start.port } : { protocol, port: start.port, endPort };
}

/** One `{port, endPort, protocol}` of a CiliumNetworkPolicy toPorts entry. */
function parseCiliumPort(value: unknown, path: string, issues: Issues): PortRule | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {port, endPort, protocol}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['port', 'endPort', 'protocol']);
  const rawPort = own(value, 'port');
  const start = rawPort === undefined || rawPort === null ? { port: 0 } : parsePortValue(rawPort, field(path, 'port'), issues, 'cilium');
  const endPort = parseEndPort(value, path, issues, start, 'cilium');
  const protocol = parseProtocol(value, path, issues, CILIUM_PROTOCOLS, 'ANY');
  if (start === undefined || endPort === false || protocol === undefined) return undefined;
  return portRule(protocol, start, endPort);
}

const L7_KINDS = ['http', 'kafka', 'dns', 'l7'] as const;

/** L7 rules are kept as given; only their outer shape is checked (the L7 proxy validates the rest). */
function checkL7Rules(value: unknown, path: string, issues: Issues): boolean {
  if (!isObject(value)) {
    issues.error(path, `must be an object (http, kafka, dns or l7proto + l7), got ${describeValue(value)}`);
    return false;
  }
  const before = issues.errors.length;
  checkFields(value, path, issues, [...L7_KINDS, 'l7proto']);
  const present = L7_KINDS.filter((kind) => own(value, kind) !== undefined && own(value, kind) !== null);
  for (const kind of present) {
    const list = own(value, kind);
    if (!Array.isArray(list)) {
      issues.error(field(path, kind), `must be a list of rules, got ${describeValue(list)}`);
      continue;
    }
    list.forEach((rule: unknown, i) => {
      if (!isObject(rule)) issues.error(index(field(path, kind), i), `must be an object, got ${describeValue(rule)}`);
    });
  }
  if (present.length > 1) issues.error(path, `only one kind of L7 rules per port rule, got ${present.join(' and ')}`);
  const l7proto = own(value, 'l7proto');
  if (l7proto !== undefined && l7proto !== null && typeof l7proto !== 'string') {
    issues.error(field(path, 'l7proto'), `must be a string, got ${describeValue(l7proto)}`);
  }
  if (present.includes('l7') && typeof l7proto !== 'string') issues.error(field(path, 'l7proto'), 'required with l7 rules');
  return issues.errors.length === before;
}

export interface ParsedToPorts {
  readonly ports: PortRule[];
  readonly l7: L7PortRules[];
  readonly notes: string[];
}

/** Features of a toPorts entry that need the L7 proxy or TLS interception. */
const UNSUPPORTED_PORT_RULE_FIELDS = {
  listener: 'not supported yet (needs the L7 proxy)',
  originatingTLS: 'not supported yet (needs the L7 proxy)',
  terminatingTLS: 'not supported yet (needs the L7 proxy)',
  serverNames: 'not supported yet (needs the L7 proxy)',
};

/**
 * A CiliumNetworkPolicy `toPorts` list. `deny`: deny rules cannot carry L7 rules. An entry
 * without `ports` covers every port and protocol.
 */
export function parseCiliumToPorts(value: readonly unknown[], path: string, issues: Issues, deny: boolean): ParsedToPorts {
  const result: ParsedToPorts = { ports: [], l7: [], notes: [] };
  value.forEach((entry: unknown, i) => {
    const at = index(path, i);
    if (!isObject(entry)) {
      issues.error(at, `must be an object {ports, rules}, got ${describeValue(entry)}`);
      return;
    }
    checkFields(entry, at, issues, ['ports', 'rules'], UNSUPPORTED_PORT_RULE_FIELDS);
    const ports = parseCiliumPortList(own(entry, 'ports'), field(at, 'ports'), issues);
    const rules = own(entry, 'rules');
    if (rules !== undefined && rules !== null) {
      const rulesPath = field(at, 'rules');
      if (deny) issues.error(rulesPath, 'deny rules cannot carry L7 rules');
      else if (checkL7Rules(rules, rulesPath, issues) && ports) {
        if (ports.length === 0) issues.error(field(at, 'ports'), 'L7 rules need at least one port');
        result.l7.push({ ports, rules, path: rulesPath });
        result.notes.push(l7AtL4Note(rulesPath));
      }
    }
    if (ports) result.ports.push(...(ports.length === 0 ? [{ protocol: 'ANY' as const, port: 0 }] : ports));
  });
  return result;
}

function parseCiliumPortList(value: unknown, path: string, issues: Issues): PortRule[] | undefined {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    issues.error(path, `must be a list of {port, endPort, protocol}, got ${describeValue(value)}`);
    return undefined;
  }
  const ports: PortRule[] = [];
  let valid = true;
  value.forEach((item: unknown, i) => {
    const port = parseCiliumPort(item, index(path, i), issues);
    if (port) ports.push(port);
    else valid = false;
  });
  return valid ? ports : undefined;
}

// Cilium's ICMP type names (pkg/policy/api/icmp.go).
const ICMP_TYPES: Readonly<Record<'IPv4' | 'IPv6', Readonly<Record<string, number>>>> = {
  IPv4: {
    EchoReply: 0, DestinationUnreachable: 3, Redirect: 5, Echo: 8, EchoRequest: 8, RouterAdvertisement: 9,
    RouterSelection: 10, TimeExceeded: 11, ParameterProblem: 12, Timestamp: 13, TimestampReply: 14, Photuris: 40,
    ExtendedEchoRequest: 42, ExtendedEchoReply: 43,
  },
  IPv6: {
    DestinationUnreachable: 1, PacketTooBig: 2, TimeExceeded: 3, ParameterProblem: 4, EchoRequest: 128,
    EchoReply: 129, MulticastListenerQuery: 130, MulticastListenerReport: 131, MulticastListenerDone: 132,
    RouterSolicitation: 133, RouterAdvertisement: 134, NeighborSolicitation: 135, NeighborAdvertisement: 136,
    RedirectMessage: 137, RouterRenumbering: 138, ICMPNodeInformationQuery: 139, ICMPNodeInformationResponse: 140,
    InverseNeighborDiscoverySolicitation: 141, InverseNeighborDiscoveryAdvertisement: 142,
    HomeAgentAddressDiscoveryRequest: 144, HomeAgentAddressDiscoveryReply: 145, MobilePrefixSolicitation: 146,
    MobilePrefixAdvertisement: 147, DuplicateAddressRequestCodeSuffix: 157,
    DuplicateAddressConfirmationCodeSuffix: 158, ExtendedEchoRequest: 160, ExtendedEchoReply: 161,
  },
};

/** A CiliumNetworkPolicy `icmps` list: each field → an ICMP/ICMPv6 port rule with port = type. */
export function parseIcmps(value: readonly unknown[], path: string, issues: Issues): { ports: PortRule[]; notes: string[] } {
  const result = { ports: [] as PortRule[], notes: [] as string[] };
  value.forEach((entry: unknown, i) => {
    const at = index(path, i);
    if (!isObject(entry)) {
      issues.error(at, `must be an object {fields}, got ${describeValue(entry)}`);
      return;
    }
    checkFields(entry, at, issues, ['fields']);
    const fields = own(entry, 'fields');
    const fieldsPath = field(at, 'fields');
    if (!Array.isArray(fields) || fields.length === 0) {
      issues.error(fieldsPath, fields === undefined ? 'required (a list of {type, family})' : `must be a non-empty list of {type, family}, got ${describeValue(fields)}`);
      return;
    }
    fields.forEach((item: unknown, j) => {
      const port = parseIcmpField(item, index(fieldsPath, j), issues);
      if (!port) return;
      result.ports.push(port);
      if (port.port === 0) {
        result.notes.push(`${index(fieldsPath, j)}: ICMP type 0 (EchoReply) is enforced as every ICMP type`);
      }
    });
  });
  return result;
}

function parseIcmpField(value: unknown, path: string, issues: Issues): PortRule | undefined {
  if (!isObject(value)) {
    issues.error(path, `must be an object {type, family}, got ${describeValue(value)}`);
    return undefined;
  }
  checkFields(value, path, issues, ['type', 'family']);
  const rawFamily = own(value, 'family');
  let family: 'IPv4' | 'IPv6' | undefined = 'IPv4';
  if (rawFamily !== undefined && rawFamily !== null) {
    family = rawFamily === 'IPv4' || rawFamily === 'IPv6' ? rawFamily : undefined;
    if (!family) issues.error(field(path, 'family'), `must be IPv4 or IPv6, got ${describeValue(rawFamily)}`);
  }
  const type = parseIcmpType(own(value, 'type'), field(path, 'type'), issues, family ?? 'IPv4');
  if (type === undefined || family === undefined) return undefined;
  return { protocol: family === 'IPv6' ? 'ICMPv6' : 'ICMP', port: type };
}

function parseIcmpType(raw: unknown, at: string, issues: Issues, family: 'IPv4' | 'IPv6'): number | undefined {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 255) return raw;
  if (typeof raw === 'string') {
    if (/^\d{1,3}$/.test(raw) && Number(raw) <= 255) return Number(raw);
    const names = ICMP_TYPES[family];
    if (Object.prototype.hasOwnProperty.call(names, raw)) return names[raw];
    issues.error(at, `unknown ${family} ICMP type ${JSON.stringify(raw)} (a number 0–255 or one of ${Object.keys(names).join(', ')})`);
    return undefined;
  }
  issues.error(at, raw === undefined ? 'required (a number 0–255 or a type name such as EchoRequest)' : `must be a number 0–255 or a type name, got ${describeValue(raw)}`);
  return undefined;
}

/** A Kubernetes NetworkPolicy `ports` list; empty means every port. */
export function parseK8sPorts(value: readonly unknown[], path: string, issues: Issues): PortRule[] {
  const ports: PortRule[] = [];
  value.forEach((entry: unknown, i) => {
    const at = index(path, i);
    if (!isObject(entry)) {
      issues.error(at, `must be an object {protocol, port, endPort}, got ${describeValue(entry)}`);
      return;
    }
    checkFields(entry, at, issues, ['protocol', 'port', 'endPort']);
    const protocol = parseProtocol(entry, at, issues, K8S_PROTOCOLS, 'TCP');
    const rawPort = own(entry, 'port');
    const absent = rawPort === undefined || rawPort === null;
    const start = absent ? { port: 0 } : parsePortValue(rawPort, field(at, 'port'), issues, 'k8s');
    if (absent && own(entry, 'endPort') !== undefined && own(entry, 'endPort') !== null) {
      issues.error(field(at, 'endPort'), 'needs a numeric port');
      return;
    }
    const endPort = parseEndPort(entry, at, issues, start, 'k8s');
    if (start === undefined || endPort === false || protocol === undefined) return;
    ports.push(portRule(protocol, start, endPort));
  });
  return ports;
}
