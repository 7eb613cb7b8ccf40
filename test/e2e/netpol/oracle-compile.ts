// Policy documents (NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy) turned
// into the oracle's own small rule form: predicates over the suite's pods, host and world
// clients. Only what the suite's cases use is understood; anything else throws, so a case can
// never silently test less than it says.
import type { ClusterModel, PeerModel, PodModel } from './oracle.js';
import { ciliumLabels, matchesCiliumSelector, matchesK8sSelector, ipInCidr, type K8sSelector } from './oracle-labels.js';

export type Direction = 'ingress' | 'egress';

export interface PortSpec {
  readonly protocol: 'TCP' | 'UDP' | 'SCTP' | 'ANY';
  /** 0: every port. */
  readonly port: number;
  readonly endPort?: number;
  readonly name?: string;
}

/** Endpoint-selector peers are the ones fromRequires/toRequires narrow down. */
export interface PeerMatcher {
  readonly kind: 'endpoints' | 'entity' | 'cidr';
  matches(peer: PeerModel, cluster: ClusterModel): boolean;
}

export interface Section {
  readonly peers: 'all' | readonly PeerMatcher[];
  /** Empty: every port and protocol. */
  readonly ports: readonly PortSpec[];
}

export interface CompiledRule {
  readonly id: string;
  selects(pod: PodModel): boolean;
  readonly enforces: Readonly<Record<Direction, boolean>>;
  readonly sections: Readonly<Record<'ingress' | 'ingressDeny' | 'egress' | 'egressDeny', readonly Section[]>>;
  readonly requires: Readonly<Record<Direction, readonly PeerMatcher[]>>;
}

type Obj = Record<string, unknown>;

const NAMESPACE_KEY = 'io.kubernetes.pod.namespace';

function fail(path: string, reason: string): never {
  throw new Error(`oracle: ${path}: ${reason}`);
}

function obj(value: unknown, path: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object');
  return value as Obj;
}

function list(value: unknown, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(path, 'expected a list');
  return value;
}

export function compileDocuments(documents: readonly unknown[], cluster: ClusterModel): CompiledRule[] {
  return documents.flatMap((doc, i) => {
    const d = obj(doc, `documents[${i}]`);
    const meta = obj(d.metadata, `documents[${i}].metadata`);
    const name = String(meta.name);
    const namespace = meta.namespace === undefined ? undefined : String(meta.namespace);
    switch (d.kind) {
      case 'NetworkPolicy':
        return [compileNetworkPolicy(obj(d.spec, 'spec'), name, namespace ?? fail('metadata.namespace', 'required'), cluster)];
      case 'CiliumNetworkPolicy':
      case 'CiliumClusterwideNetworkPolicy': {
        const ns = d.kind === 'CiliumNetworkPolicy' ? (namespace ?? fail('metadata.namespace', 'required')) : undefined;
        const specs = d.specs !== undefined ? list(d.specs, 'specs') : [d.spec];
        return specs.map((s, j) => compileCiliumRule(obj(s, 'spec'), `${d.kind}/${ns ?? ''}/${name}${d.specs ? `#${j}` : ''}`, ns, cluster));
      }
      default:
        return fail(`documents[${i}].kind`, `unknown kind ${String(d.kind)}`);
    }
  });
}

// ---- Kubernetes NetworkPolicy ------------------------------------------------------------

function compileNetworkPolicy(spec: Obj, name: string, namespace: string, cluster: ClusterModel): CompiledRule {
  const podSelector = (spec.podSelector ?? {}) as K8sSelector;
  // Kubernetes' defaulting: Ingress, plus Egress when there is at least one egress rule.
  const types = spec.policyTypes === undefined ? ['Ingress', ...(list(spec.egress, 'spec.egress').length > 0 ? ['Egress'] : [])] : list(spec.policyTypes, 'spec.policyTypes');
  const nsLabels = (ns: string) => cluster.namespaces.find((n) => n.name === ns)?.labels ?? {};
  const peer = (p: Obj, path: string): PeerMatcher => {
    if (p.ipBlock !== undefined) {
      const block = obj(p.ipBlock, `${path}.ipBlock`);
      return cidrMatcher(String(block.cidr), list(block.except, `${path}.ipBlock.except`).map(String));
    }
    if (p.podSelector === undefined && p.namespaceSelector === undefined) fail(path, 'a peer needs podSelector, namespaceSelector or ipBlock');
    return {
      kind: 'endpoints',
      matches: (q) => {
        if (q.kind !== 'pod') return false;
        const nsOk = p.namespaceSelector === undefined ? q.pod.namespace === namespace : matchesK8sSelector(p.namespaceSelector as K8sSelector, nsLabels(q.pod.namespace));
        const podOk = p.podSelector === undefined || matchesK8sSelector(p.podSelector as K8sSelector, q.pod.labels);
        return nsOk && podOk;
      },
    };
  };
  const section = (rule: unknown, path: string, peersKey: 'from' | 'to'): Section => {
    const r = obj(rule, path);
    const peers = list(r[peersKey], `${path}.${peersKey}`);
    const ports = list(r.ports, `${path}.ports`).map((p, k): PortSpec => {
      const q = obj(p, `${path}.ports[${k}]`);
      const protocol = (q.protocol ?? 'TCP') as PortSpec['protocol'];
      if (typeof q.port === 'string') return { protocol, port: 0, name: q.port };
      return { protocol, port: (q.port as number | undefined) ?? 0, ...(q.endPort !== undefined ? { endPort: q.endPort as number } : {}) };
    });
    return { peers: peers.length === 0 ? 'all' : peers.map((p, k) => peer(obj(p, `${path}.${peersKey}[${k}]`), `${path}.${peersKey}[${k}]`)), ports };
  };
  return {
    id: `NetworkPolicy/${namespace}/${name}`,
    selects: (pod) => pod.namespace === namespace && matchesK8sSelector(podSelector, pod.labels),
    enforces: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
    sections: {
      ingress: types.includes('Ingress') ? list(spec.ingress, 'spec.ingress').map((r, k) => section(r, `spec.ingress[${k}]`, 'from')) : [],
      egress: types.includes('Egress') ? list(spec.egress, 'spec.egress').map((r, k) => section(r, `spec.egress[${k}]`, 'to')) : [],
      ingressDeny: [],
      egressDeny: [],
    },
    requires: { ingress: [], egress: [] },
  };
}

// ---- CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy --------------------------------

/** A CNP selector, folded into the policy namespace unless it names the namespace itself. */
function endpointsMatcher(selector: unknown, namespace: string | undefined, path: string): PeerMatcher {
  const sel = obj(selector, path) as K8sSelector;
  const keys = [...Object.keys(sel.matchLabels ?? {}), ...(sel.matchExpressions ?? []).map((e) => e.key)];
  const constrainsNamespace = keys.some((k) => k === NAMESPACE_KEY || k === `k8s:${NAMESPACE_KEY}` || k === `any:${NAMESPACE_KEY}`);
  const fold = namespace !== undefined && !constrainsNamespace;
  return {
    kind: 'endpoints',
    matches: (peer, cluster) => {
      const labels = ciliumLabels(peer, cluster);
      if (fold && labels.get(`k8s:${NAMESPACE_KEY}`) !== namespace) return false;
      return matchesCiliumSelector(sel, labels);
    },
  };
}

function entityMatcher(entity: string, path: string): PeerMatcher {
  const kinds: Record<string, readonly PeerModel['kind'][]> = {
    all: ['pod', 'host', 'world'],
    world: ['world'],
    cluster: ['pod', 'host'],
    host: ['host'],
    // Nothing of these exists in the suite's cluster.
    'remote-node': [],
    health: [],
    init: [],
    unmanaged: [],
    'kube-apiserver': [],
    ingress: [],
  };
  const selected = kinds[entity] ?? fail(path, `unknown entity ${entity}`);
  return { kind: 'entity', matches: (peer) => selected.includes(peer.kind) };
}

function cidrMatcher(cidr: string, except: readonly string[]): PeerMatcher {
  return { kind: 'cidr', matches: (peer) => peer.kind === 'world' && ipInCidr(peer.ip, cidr) && !except.some((e) => ipInCidr(peer.ip, e)) };
}

function ciliumPorts(toPorts: unknown, path: string): PortSpec[] {
  return list(toPorts, path).flatMap((tp, i) =>
    list(obj(tp, `${path}[${i}]`).ports, `${path}[${i}].ports`).map((p, j): PortSpec => {
      const q = obj(p, `${path}[${i}].ports[${j}]`);
      const protocol = (q.protocol ?? 'ANY') as PortSpec['protocol'];
      const raw = q.port === undefined ? '0' : String(q.port);
      if (!/^\d+$/.test(raw)) return { protocol, port: 0, name: raw };
      return { protocol, port: Number(raw), ...(q.endPort !== undefined ? { endPort: Number(q.endPort) } : {}) };
    }),
  );
}

function ciliumSection(rule: unknown, path: string, direction: Direction, namespace: string | undefined): Section {
  const r = obj(rule, path);
  const [eps, cidrs, cidrSets, entities] = direction === 'ingress' ? ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities'] : ['toEndpoints', 'toCIDR', 'toCIDRSet', 'toEntities'];
  const ports = ciliumPorts(r.toPorts, `${path}.toPorts`);
  if (r.icmps !== undefined) fail(`${path}.icmps`, 'the oracle does not model ICMP');
  const hasL3 = [eps, cidrs, cidrSets, entities].some((k) => r[k!] !== undefined);
  if (!hasL3) return { peers: ports.length > 0 ? 'all' : [], ports };
  const peers: PeerMatcher[] = [
    ...list(r[eps!], `${path}.${eps}`).map((s, i) => endpointsMatcher(s, namespace, `${path}.${eps}[${i}]`)),
    ...list(r[cidrs!], `${path}.${cidrs}`).map((c) => cidrMatcher(String(c), [])),
    ...list(r[cidrSets!], `${path}.${cidrSets}`).map((c, i) => {
      const set = obj(c, `${path}.${cidrSets}[${i}]`);
      return cidrMatcher(String(set.cidr), list(set.except, `${path}.${cidrSets}[${i}].except`).map(String));
    }),
    ...list(r[entities!], `${path}.${entities}`).map((e, i) => entityMatcher(String(e), `${path}.${entities}[${i}]`)),
  ];
  return { peers, ports };
}

function compileCiliumRule(spec: Obj, id: string, namespace: string | undefined, cluster: ClusterModel): CompiledRule {
  const subject = endpointsMatcher(spec.endpointSelector ?? fail('spec.endpointSelector', 'required'), undefined, 'spec.endpointSelector');
  const defaultDeny = (spec.enableDefaultDeny ?? {}) as { ingress?: boolean; egress?: boolean };
  const sections = (key: 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny', direction: Direction) =>
    list(spec[key], `spec.${key}`).map((r, i) => ciliumSection(r, `spec.${key}[${i}]`, direction, namespace));
  const requires = (direction: Direction) => {
    const key = direction === 'ingress' ? 'fromRequires' : 'toRequires';
    return list(spec[direction], `spec.${direction}`).flatMap((r, i) =>
      list(obj(r, `spec.${direction}[${i}]`)[key], `spec.${direction}[${i}].${key}`).map((s, j) => endpointsMatcher(s, namespace, `spec.${direction}[${i}].${key}[${j}]`)),
    );
  };
  const has = (key: string) => list(spec[key], `spec.${key}`).length > 0;
  return {
    id,
    selects: (pod) => (namespace === undefined || pod.namespace === namespace) && subject.matches({ kind: 'pod', pod }, cluster),
    enforces: {
      ingress: (has('ingress') || has('ingressDeny')) && defaultDeny.ingress !== false,
      egress: (has('egress') || has('egressDeny')) && defaultDeny.egress !== false,
    },
    sections: { ingress: sections('ingress', 'ingress'), ingressDeny: sections('ingressDeny', 'ingress'), egress: sections('egress', 'egress'), egressDeny: sections('egressDeny', 'egress') },
    requires: { ingress: requires('ingress'), egress: requires('egress') },
  };
}
