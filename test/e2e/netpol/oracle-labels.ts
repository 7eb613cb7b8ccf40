// Labels and selectors for the oracle: Kubernetes LabelSelectors over plain labels, and Cilium
// endpoint selectors over `source:key` labels (the form the agent gives endpoints).
import type { ClusterModel, PeerModel } from './oracle.js';

export interface K8sSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

/** Kubernetes LabelSelector semantics; `{}` matches everything. */
export function matchesK8sSelector(selector: K8sSelector, labels: Readonly<Record<string, string>>): boolean {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(labels, k);
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (!has(k) || labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) if (!expressionHolds(e.operator, e.values ?? [], has(e.key) ? [labels[e.key]!] : [])) return false;
  return true;
}

/**
 * The labels of a peer as the agent's identities carry them: `k8s:` pod labels, the namespace
 * as `k8s:io.kubernetes.pod.namespace`, namespace labels under
 * `k8s:io.cilium.k8s.namespace.labels.`; `reserved:host`, `reserved:world` otherwise.
 */
export function ciliumLabels(peer: PeerModel, cluster: ClusterModel): Map<string, string> {
  if (peer.kind === 'host') return new Map([['reserved:host', '']]);
  if (peer.kind === 'world') return new Map([['reserved:world', '']]);
  const labels = new Map<string, string>();
  for (const [k, v] of Object.entries(peer.pod.labels)) labels.set(`k8s:${k}`, v);
  labels.set('k8s:io.kubernetes.pod.namespace', peer.pod.namespace);
  const ns = cluster.namespaces.find((n) => n.name === peer.pod.namespace);
  for (const [k, v] of Object.entries(ns?.labels ?? {})) labels.set(`k8s:io.cilium.k8s.namespace.labels.${k}`, v);
  return labels;
}

/** A selector key without a source means `any:`; `any:` matches the key under every source. */
function valuesOf(key: string, labels: ReadonlyMap<string, string>): string[] {
  const colon = key.indexOf(':');
  const [source, bare] = colon < 0 ? ['any', key] : [key.slice(0, colon), key.slice(colon + 1)];
  const out: string[] = [];
  for (const [k, v] of labels) {
    const c = k.indexOf(':');
    if (k.slice(c + 1) === bare && (source === 'any' || k.slice(0, c) === source)) out.push(v);
  }
  return out;
}

export function matchesCiliumSelector(selector: K8sSelector, labels: ReadonlyMap<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (!valuesOf(k, labels).includes(v)) return false;
  for (const e of selector.matchExpressions ?? []) if (!expressionHolds(e.operator, e.values ?? [], valuesOf(e.key, labels))) return false;
  return true;
}

function expressionHolds(operator: string, values: readonly string[], present: readonly string[]): boolean {
  switch (operator) {
    case 'In':
      return present.some((v) => values.includes(v));
    case 'NotIn':
      return !present.some((v) => values.includes(v));
    case 'Exists':
      return present.length > 0;
    case 'DoesNotExist':
      return present.length === 0;
    default:
      throw new Error(`oracle: unknown selector operator ${operator}`);
  }
}

function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`oracle: not an IPv4 address: ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function ipInCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/');
  const bits = Number(len ?? 32);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((ipv4ToNumber(ip) & mask) >>> 0) === ((ipv4ToNumber(base!) & mask) >>> 0);
}
