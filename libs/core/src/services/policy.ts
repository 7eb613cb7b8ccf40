import type { Direction, L4Protocol, Labels, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/** Monotonic revision of the policy repository; every import or delete returns a new one. */
export type PolicyRevision = number;

/** Key of one per-endpoint policy map entry. */
export interface PolicyKey {
  /** Peer identity; 0 matches every peer. */
  readonly identity: NumericIdentity;
  readonly direction: Direction;
  /** IP protocol number; 0 matches every protocol. */
  readonly protocol: number;
  /** Destination port; 0 matches every port. */
  readonly port: number;
  /** Inclusive end of a port range; equals `port` for a single port. */
  readonly endPort: number;
}

/** Value of one per-endpoint policy map entry. */
export interface PolicyEntry {
  readonly verdict: 'allow' | 'deny';
  /** Redirect to this L7 proxy port; 0 for none. */
  readonly proxyPort: number;
  /** With a proxy port: the L7 rules the proxy applies to this key's connections. */
  readonly l7?: { readonly parser: string; readonly rules: readonly unknown[] };
  /** Names of the rules that produced this entry, for trace and `endpoint get`. */
  readonly derivedFrom: readonly string[];
}

/**
 * Enforcement modes, as in Cilium: `default` enforces a direction once a rule selecting the
 * endpoint has that direction; `always` enforces both directions for every endpoint; `never`
 * enforces nothing.
 */
export type PolicyEnforcementMode = 'default' | 'always' | 'never';

/** Whether each direction of an endpoint is enforced (default deny unless allowed). */
export interface PolicyEnforcement {
  readonly ingress: boolean;
  readonly egress: boolean;
}

/** Incremental change to one endpoint's map state. */
export interface PolicyDelta {
  readonly revision: PolicyRevision;
  readonly upserts: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>;
  readonly deletes: readonly PolicyKey[];
  /** Present when the endpoint's enforcement changed. */
  readonly enforcement?: PolicyEnforcement;
  /**
   * When the import or delete that made this revision was requested (ms since the epoch, with
   * a fraction: `performance.timeOrigin + performance.now()`), for the realizer to measure how
   * long policy takes to reach the datapath. Absent on deltas of identity changes, which no
   * import caused.
   */
  readonly issuedAt?: number;
}

/** A named container port of an endpoint (Kubernetes `containers[].ports[]`). */
export interface NamedPort {
  readonly port: number;
  readonly protocol: L4Protocol;
}

/** The subject of resolution: an endpoint's identity and labels. */
export interface PolicySubject {
  readonly endpointId: number;
  readonly identity: NumericIdentity;
  readonly labels: Labels;
  /** The endpoint's named ports, by name; rules naming a port resolve it here. */
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

/** A stored rule, as `policy get` lists it. */
export interface PolicyRuleInfo {
  readonly name: string;
  readonly namespace?: string;
  readonly kind: string;
  readonly revision: PolicyRevision;
  /** Why part of it is not enforced yet (e.g. L7 rules enforced at L4), if so. */
  readonly notes: readonly string[];
  /** The rule as imported. */
  readonly spec: unknown;
}

/**
 * Rules in, per-endpoint map state out. Changes are incremental: one rule or identity touches
 * only the entries it affects.
 */
export interface PolicyRepository {
  /** Validates and stores documents (CiliumNetworkPolicy, NetworkPolicy, …). */
  import(documents: readonly unknown[]): Promise<PolicyRevision>;
  /**
   * Deletes by name (and namespace, and kind), or every rule with `{ all: true }`. Throws
   * when nothing matched.
   */
  delete(selector: { name: string; namespace?: string; kind?: string } | { all: true }): Promise<PolicyRevision>;
  revision(): PolicyRevision;
  /** The configured enforcement mode. */
  readonly enforcementMode: PolicyEnforcementMode;
  rules(): readonly PolicyRuleInfo[];
  /** Full map state for a subject at the current revision. */
  resolve(subject: PolicySubject): {
    revision: PolicyRevision;
    enforcement: PolicyEnforcement;
    entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>;
  };
  /**
   * Deltas for a subject as rules and identities change, starting after the state `resolve`
   * returned. Every new revision reaches every watcher (with empty changes when it is not
   * affected), so a watcher always knows the revision it has realized.
   */
  watch(subject: PolicySubject, listener: (delta: PolicyDelta) => void): Unsubscribe;
}
