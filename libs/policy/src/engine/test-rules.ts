// Test helpers: hand-made rules in the normalized model, and a watcher that accumulates deltas.
import type { PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey, PolicySubject } from '@cilia/core';
import type { EndpointSelector, Peer, PeerRule, PolicyRule, PortRule } from '../model.js';
import type { PolicyEngine } from './engine.js';
import { policyKeyString } from './ports.js';

/** matchLabels over `k8s:` keys. */
export function sel(labels: Record<string, string>): EndpointSelector {
  return {
    requirements: Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => ({ key: k.includes(':') ? k : `k8s:${k}`, operator: 'In' as const, values: [v] })),
  };
}

export const endpoints = (labels: Record<string, string>): Peer => ({ kind: 'endpoints', selector: sel(labels) });

export function peerRule(peers: PeerRule['peers'], ports: readonly PortRule[] = [], path = 'spec.ingress[0]'): PeerRule {
  return { peers, ports, path };
}

export const tcp = (port: number, endPort?: number): PortRule => ({ protocol: 'TCP', port, ...(endPort !== undefined ? { endPort } : {}) });

/** A CiliumNetworkPolicy-like rule named `name`; enforcement follows the sections given unless set. */
export function rule(name: string, subject: EndpointSelector, parts: Partial<Omit<PolicyRule, 'id' | 'origin' | 'subject'>> = {}): PolicyRule {
  const ingress = parts.ingress ?? [];
  const ingressDeny = parts.ingressDeny ?? [];
  const egress = parts.egress ?? [];
  const egressDeny = parts.egressDeny ?? [];
  return {
    id: `CiliumNetworkPolicy/x/${name}`,
    origin: { kind: 'CiliumNetworkPolicy', namespace: 'x', name },
    subject,
    ingress,
    ingressDeny,
    egress,
    egressDeny,
    enforces: parts.enforces ?? { ingress: ingress.length + ingressDeny.length > 0, egress: egress.length + egressDeny.length > 0 },
    ingressRequires: parts.ingressRequires ?? [],
    egressRequires: parts.egressRequires ?? [],
    notes: parts.notes ?? [],
  };
}

export type StateMap = Map<string, PolicyEntry>;

export const toMap = (entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>): StateMap => new Map(entries.map(([k, e]) => [policyKeyString(k), e]));

/** What a realizer would hold: `resolve` then every delta applied. */
export class Accumulator {
  readonly state: StateMap;
  enforcement: PolicyEnforcement;
  revision: number;
  readonly deltas: PolicyDelta[] = [];
  readonly unwatch: () => void;

  constructor(
    engine: PolicyEngine,
    readonly subject: PolicySubject,
  ) {
    const initial = engine.resolve(subject);
    this.state = toMap(initial.entries);
    this.enforcement = initial.enforcement;
    this.revision = initial.revision;
    this.unwatch = engine.watch(subject, (d) => this.apply(d));
  }

  apply(d: PolicyDelta): void {
    this.deltas.push(d);
    this.revision = d.revision;
    for (const k of d.deletes) this.state.delete(policyKeyString(k));
    for (const [k, e] of d.upserts) this.state.set(policyKeyString(k), e);
    if (d.enforcement) this.enforcement = d.enforcement;
  }
}

/** A Logger that drops everything. */
export function silentLogger(): import('@cilia/core').Logger {
  const noop = (): void => {};
  const logger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, child: () => logger };
  return logger;
}
