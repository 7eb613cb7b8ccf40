// The normalized rule model: what the parsers (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy,
// Kubernetes NetworkPolicy) produce and the engine resolves. Every source's semantics (namespace
// scoping, empty-rule meaning, policyTypes, ...) are settled by the parser, so the engine only
// matches selectors against labels.
import type { Cidr } from '@cilia/core';

/**
 * One label requirement with Kubernetes LabelSelector semantics over Cilium label keys.
 * `key` always carries a source: `k8s:app`, `reserved:host`, or `any:app` (matches the label
 * `app` of any source). Parsers turn a bare `app` into `any:app`.
 */
export interface LabelRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Sorted, without duplicates; empty for Exists/DoesNotExist. */
  readonly values: readonly string[];
}

/** Requirements ANDed; no requirement selects every labelled identity. */
export interface EndpointSelector {
  /** Sorted by key, operator, values (so equal selectors serialize equally). */
  readonly requirements: readonly LabelRequirement[];
}

/** Cilium's entities. */
export type Entity =
  | 'all'
  | 'world'
  | 'cluster'
  | 'host'
  | 'remote-node'
  | 'health'
  | 'init'
  | 'unmanaged'
  | 'kube-apiserver'
  | 'ingress';

/** Who is on the other end of a rule. */
export type Peer =
  /** Identities whose labels match (namespace scoping already folded into the selector). */
  | { readonly kind: 'endpoints'; readonly selector: EndpointSelector }
  | { readonly kind: 'entity'; readonly entity: Entity }
  /**
   * Addresses outside the cluster: the local CIDR identities of `cidr` and of every prefix
   * inside it, minus those inside an `except` prefix; `0.0.0.0/0` also selects `world`.
   */
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly except: readonly Cidr[] };

/** Protocols a port rule can name. `ANY` with a port means TCP, UDP and SCTP. */
export type PortProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6' | 'ANY';

/** One port (or range, or named port, or ICMP type) of a rule. */
export interface PortRule {
  readonly protocol: PortProtocol;
  /** 0 = every port. For ICMP/ICMPv6 the ICMP type. */
  readonly port: number;
  /** Inclusive end of a range (≥ port); absent for one port. */
  readonly endPort?: number;
  /** A named port, resolved on the destination endpoint; `port` is then 0. */
  readonly name?: string;
}

/** One allow or deny rule of a direction. */
export interface PeerRule {
  /** `all`: every peer (no L3 part). An empty list selects nothing. Peers are ORed. */
  readonly peers: 'all' | readonly Peer[];
  /** Empty: every port and protocol. Ports are ORed; ANDed with the peers. */
  readonly ports: readonly PortRule[];
  /** L7 rules as given (enforced at L4 until the L7 proxy exists); absent when none. */
  readonly l7?: unknown;
  /** Field path of this rule in its document, e.g. `spec.ingress[0]`. */
  readonly path: string;
}

/** Where a rule came from. */
export interface RuleOrigin {
  readonly kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';
  readonly name: string;
  /** Absent for cluster-wide policies. */
  readonly namespace?: string;
  /** Index in `specs:` when the document has a list, else absent. */
  readonly specIndex?: number;
}

/** One normalized rule: a subject and what it allows and denies in each direction. */
export interface PolicyRule {
  /** Unique and stable: `<kind>/<namespace>/<name>` (`<kind>//<name>` cluster-wide), plus `#<specIndex>`. */
  readonly id: string;
  readonly origin: RuleOrigin;
  /** The endpoints this rule applies to (namespace scoping folded in). */
  readonly subject: EndpointSelector;
  /** Allow rules; the direction is enforced for the subject when `enforces.ingress`. */
  readonly ingress: readonly PeerRule[];
  readonly ingressDeny: readonly PeerRule[];
  readonly egress: readonly PeerRule[];
  readonly egressDeny: readonly PeerRule[];
  /**
   * Whether this rule turns on default deny for its subject in each direction (a CNP with an
   * `ingress`/`ingressDeny` section, unless `enableDefaultDeny.ingress: false`; a
   * NetworkPolicy per its policyTypes).
   */
  readonly enforces: { readonly ingress: boolean; readonly egress: boolean };
  /** fromRequires/toRequires: ANDed into every `endpoints` peer of every rule applying to the subject. */
  readonly ingressRequires: readonly EndpointSelector[];
  readonly egressRequires: readonly EndpointSelector[];
  /** Why part of it is not enforced as written (e.g. L7 rules enforced at L4). */
  readonly notes: readonly string[];
}

/** A field the input got wrong: a path into the document and the reason. */
export interface PolicyFieldError {
  /** e.g. `spec.ingress[0].toPorts[0].ports[1].port`. */
  readonly path: string;
  readonly reason: string;
}

/** What a parser returns: rules, or every error found. It never throws. */
export type ParseResult =
  | { readonly ok: true; readonly rules: readonly PolicyRule[] }
  | { readonly ok: false; readonly errors: readonly PolicyFieldError[] };
