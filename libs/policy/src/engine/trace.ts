import type { PolicyDirectionTrace, PolicyTraceResponse } from '@cilia/api-client';
import { ReservedIdentity, type Direction, type Identity, type IdentityAllocator, type Labels, type PolicyEnforcementMode } from '@cilia/core';
import type { EndpointSelector, PeerRule, PolicyRule } from '../model.js';
import { peerMatcher } from './peers.js';
import { formatPortKey, portKeyCovers, portKeys, PROTOCOL_NUMBERS, type NamedPortLookup } from './ports.js';
import { ALLOW_ALL_NO_DEFAULT_DENY, ALLOW_LOCALHOST } from './subject-state.js';
import { formatLabels, selectorKey, selectorMatches } from './selectors.js';

/** Would a packet from `src` to `dst` on `dport`/`protocol` pass? (`protocol`: TCP, UDP, … or a number) */
export interface TraceQuery {
  readonly src: Labels;
  readonly dst: Labels;
  readonly dport: number;
  readonly protocol: string | number;
}

/** One side's answer: egress of the source, or ingress of the destination (the API's wire type). */
export type DirectionTrace = PolicyDirectionTrace;

/** What `POST /v1/policy/trace` answers. */
export type TraceResult = PolicyTraceResponse;

export interface TraceContext {
  readonly rules: readonly PolicyRule[];
  readonly mode: PolicyEnforcementMode;
  readonly allowLocalhost: boolean;
  readonly identities: IdentityAllocator;
  readonly egressNamedPorts: NamedPortLookup;
  /** Named ports of the destination, found by its labels. */
  readonly ingressNamedPorts: (labels: Labels) => NamedPortLookup;
}

const RESERVED_BY_NAME = new Map<string, number>([
  ['unknown', ReservedIdentity.unknown],
  ['host', ReservedIdentity.host],
  ['world', ReservedIdentity.world],
  ['unmanaged', ReservedIdentity.unmanaged],
  ['health', ReservedIdentity.health],
  ['init', ReservedIdentity.init],
  ['remote-node', ReservedIdentity.remoteNode],
  ['kube-apiserver', ReservedIdentity.kubeApiserver],
  ['ingress', ReservedIdentity.ingress],
]);

/** The identity labels stand for: reserved by its label, a known one, or an unnamed one of the right scope. */
function identityOf(labels: Labels, identities: IdentityAllocator): Identity {
  const keys = Object.keys(labels);
  if (keys.length > 0 && keys.every((k) => k.startsWith('reserved:'))) {
    const id = RESERVED_BY_NAME.get(keys[0]!.slice('reserved:'.length));
    if (id !== undefined) return { id, labels, scope: 'reserved' };
  }
  let known: Identity | undefined;
  try {
    known = identities.lookupByLabels(labels);
  } catch {
    known = undefined;
  }
  if (known) return { ...known, labels };
  return { id: -1, labels, scope: keys.some((k) => k.startsWith('cidr:')) ? 'local' : 'cluster' };
}

function protocolNumber(protocol: string | number): number {
  if (typeof protocol === 'number') return protocol;
  const byName = Object.entries(PROTOCOL_NUMBERS).find(([n]) => n.toLowerCase() === protocol.toLowerCase());
  if (byName) return byName[1];
  if (/^\d+$/.test(protocol)) return Number(protocol);
  throw new Error(`protocol: expected TCP, UDP, SCTP, ICMP, ICMPv6 or a number, got ${JSON.stringify(protocol)}`);
}

function requiresOf(rules: readonly PolicyRule[], direction: Direction): EndpointSelector[] {
  const byKey = new Map<string, EndpointSelector>();
  for (const r of rules) for (const s of direction === 'ingress' ? r.ingressRequires : r.egressRequires) byKey.set(selectorKey(s), s);
  return [...byKey.values()];
}

function peerRuleMatches(pr: PeerRule, peer: Identity, requires: readonly EndpointSelector[]): boolean {
  if (pr.peers === 'all') return true;
  return pr.peers.some((p) => {
    const m = peerMatcher(p, requires);
    return !m || m.staticIds.has(peer.id) || m.matches(peer);
  });
}

interface Side {
  readonly direction: Direction;
  readonly subject: Labels;
  readonly peer: Identity;
  readonly protocol: number;
  readonly dport: number;
  readonly namedPorts: NamedPortLookup;
}

function traceSide(side: Side, ctx: TraceContext): DirectionTrace {
  const { direction } = side;
  const lines: string[] = [];
  const who = `${direction} of ${formatLabels(side.subject)}`;
  const selecting = ctx.mode === 'never' ? [] : ctx.rules.filter((r) => selectorMatches(r.subject, side.subject));
  let enforced: boolean;
  let allowAll = false;
  if (ctx.mode !== 'default') {
    enforced = ctx.mode === 'always';
    lines.push(`${who} is ${enforced ? '' : 'not '}enforced (enforcement mode ${ctx.mode})`);
  } else {
    const enforcers = selecting.filter((r) => r.enforces[direction]).map((r) => r.id);
    const denying = selecting.filter((r) => (direction === 'ingress' ? r.ingressDeny : r.egressDeny).length > 0).map((r) => r.id);
    enforced = enforcers.length > 0 || denying.length > 0;
    allowAll = enforcers.length === 0 && denying.length > 0;
    lines.push(
      enforcers.length > 0
        ? `${who} is enforced by ${enforcers.join(', ')}`
        : allowAll
          ? `${who} is enforced for the deny rules of ${denying.join(', ')}, with everything else allowed (${ALLOW_ALL_NO_DEFAULT_DENY})`
          : `${who} is not enforced: ${selecting.length === 0 ? 'no rule selects it' : `no rule selecting it enforces ${direction}`}`,
    );
  }
  const requires = requiresOf(selecting, direction);
  const toward = direction === 'ingress' ? 'from' : 'to';
  const peerText = formatLabels(side.peer.labels);
  const allowedBy: string[] = [];
  const deniedBy: string[] = [];
  for (const rule of selecting) {
    const sections: ReadonlyArray<readonly [readonly PeerRule[], 'allows' | 'denies']> =
      direction === 'ingress' ? [[rule.ingress, 'allows'], [rule.ingressDeny, 'denies']] : [[rule.egress, 'allows'], [rule.egressDeny, 'denies']];
    for (const [peerRules, verb] of sections) {
      for (const pr of peerRules) {
        if (!peerRuleMatches(pr, side.peer, requires)) continue;
        const covering = portKeys(pr.ports, side.namedPorts).find((k) => portKeyCovers(k, side.protocol, side.dport));
        if (!covering) continue;
        (verb === 'allows' ? allowedBy : deniedBy).push(rule.id);
        lines.push(`rule ${rule.id} (${pr.path}) ${verb} ${formatPortKey(covering)} ${toward} ${peerText}`);
      }
    }
  }
  if (allowAll) allowedBy.push(ALLOW_ALL_NO_DEFAULT_DENY);
  if (direction === 'ingress' && enforced && ctx.allowLocalhost && side.peer.id === ReservedIdentity.host) {
    allowedBy.push(ALLOW_LOCALHOST);
    lines.push('allow-localhost: the host may always reach an endpoint');
  }
  let verdict: DirectionTrace['verdict'];
  if (deniedBy.length > 0) {
    verdict = 'denied';
    lines.push(`${direction} denied by ${[...new Set(deniedBy)].join(', ')} (deny wins over allow)`);
  } else if (!enforced) {
    verdict = 'allowed';
    lines.push(`${direction} allowed: not enforced`);
  } else if (allowedBy.length > 0) {
    verdict = 'allowed';
    lines.push(`${direction} allowed by ${[...new Set(allowedBy)].join(', ')}`);
  } else {
    verdict = 'denied';
    lines.push(`${direction} denied: no rule allows it (default deny)`);
  }
  return { enforced, verdict, allowedBy: [...new Set(allowedBy)], deniedBy: [...new Set(deniedBy)], lines };
}

/**
 * Explains the verdict for one packet by evaluating the rules directly on the labels (no map
 * state involved): egress of the source, then ingress of the destination.
 */
export function traceVerdict(query: TraceQuery, ctx: TraceContext): TraceResult {
  const protocol = protocolNumber(query.protocol);
  if (!Number.isInteger(query.dport) || query.dport < 0 || query.dport > 65535) throw new Error(`dport: expected a port from 0 to 65535, got ${JSON.stringify(query.dport)}`);
  const src = identityOf(query.src, ctx.identities);
  const dst = identityOf(query.dst, ctx.identities);
  const egress = traceSide({ direction: 'egress', subject: query.src, peer: dst, protocol, dport: query.dport, namedPorts: ctx.egressNamedPorts }, ctx);
  const ingress = traceSide({ direction: 'ingress', subject: query.dst, peer: src, protocol, dport: query.dport, namedPorts: ctx.ingressNamedPorts(query.dst) }, ctx);
  return { verdict: egress.verdict === 'allowed' && ingress.verdict === 'allowed' ? 'allowed' : 'denied', egress, ingress };
}
