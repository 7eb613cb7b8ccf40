import { IdentityRange, ReservedIdentity, type Identity, type Labels } from '@cilia/core';
import type { EndpointSelector, Entity, Peer } from '../model.js';
import { cidrContains, parseCidr, type ParsedCidr } from './cidr.js';
import { andSelectors, selectorKey, selectorMatches } from './selectors.js';

/**
 * A selector of peer identities, as the selector cache holds it: endpoint selectors, entities
 * and CIDR peers alike. `staticIds` are always selected (reserved identities named by an
 * entity), whether or not the allocator lists them.
 */
export interface PeerMatcher {
  /** Canonical: equal selectors have equal keys. */
  readonly key: string;
  readonly staticIds: ReadonlySet<number>;
  matches(identity: Identity): boolean;
  /**
   * `In` requirements: the identities worth testing carry one of `values` under `key` (an
   * exact label key, or `any:<name>` for the name under any source). The cache uses the narrowest.
   */
  readonly indexHints?: ReadonlyArray<{ readonly key: string; readonly values: readonly string[] }>;
  /** Only CIDR identities can match. */
  readonly cidrOnly?: boolean;
}

const RESERVED_BY_ENTITY: Record<Exclude<Entity, 'all' | 'world' | 'cluster'>, number> = {
  host: ReservedIdentity.host,
  unmanaged: ReservedIdentity.unmanaged,
  health: ReservedIdentity.health,
  init: ReservedIdentity.init,
  'remote-node': ReservedIdentity.remoteNode,
  'kube-apiserver': ReservedIdentity.kubeApiserver,
  ingress: ReservedIdentity.ingress,
};
const CLUSTER_RESERVED = [1, 3, 4, 5, 6, 7, 8];

const isCidrLabel = (k: string): boolean => k.startsWith('cidr:');

/** The most specific `cidr:` label of an identity: the address range it stands for. */
export function identityPrefix(labels: Labels): ParsedCidr | undefined {
  let best: ParsedCidr | undefined;
  for (const k of Object.keys(labels)) {
    if (!isCidrLabel(k)) continue;
    const p = parseCidr(k.slice(5));
    if (p && (!best || p.length > best.length)) best = p;
  }
  return best;
}

export function endpointsMatcher(selector: EndpointSelector): PeerMatcher {
  const hints = selector.requirements.filter((r) => r.operator === 'In').map((r) => ({ key: r.key, values: r.values }));
  return {
    key: `endpoints:${selectorKey(selector)}`,
    staticIds: new Set(),
    matches: (identity) => selectorMatches(selector, identity.labels),
    ...(hints.length ? { indexHints: hints } : {}),
  };
}

/** `all` is not here: it becomes the wildcard identity 0, not a set of identities. */
export function entityMatcher(entity: Exclude<Entity, 'all'>): PeerMatcher {
  const key = `entity:${entity}`;
  switch (entity) {
    case 'world':
      return {
        key,
        staticIds: new Set([ReservedIdentity.world]),
        matches: (i) => i.id === ReservedIdentity.world || Object.keys(i.labels).some(isCidrLabel),
      };
    case 'cluster':
      return {
        key,
        staticIds: new Set(CLUSTER_RESERVED),
        matches: (i) => CLUSTER_RESERVED.includes(i.id) || i.scope === 'cluster' || (i.id >= IdentityRange.clusterMin && i.id <= IdentityRange.clusterMax),
      };
    default: {
      const id = RESERVED_BY_ENTITY[entity];
      return { key, staticIds: new Set([id]), matches: (i) => i.id === id || `reserved:${entity}` in i.labels };
    }
  }
}

export function cidrMatcher(cidr: string, except: readonly string[]): PeerMatcher {
  const outer = parseCidr(cidr);
  const holes = except.map(parseCidr).filter((p): p is ParsedCidr => p !== undefined);
  const everything = outer?.length === 0;
  return {
    key: `cidr:${cidr}${except.length ? ` except ${[...except].sort().join(' ')}` : ''}`,
    staticIds: new Set(everything ? [ReservedIdentity.world] : []),
    cidrOnly: !everything,
    matches: (i) => {
      if (everything && i.id === ReservedIdentity.world) return true;
      const p = identityPrefix(i.labels);
      return !!outer && !!p && cidrContains(outer, p) && !holes.some((h) => cidrContains(h, p));
    },
  };
}

/**
 * The matcher for one peer; `requires` (fromRequires/toRequires of every rule applying to the
 * subject) are ANDed into endpoint selectors. Undefined for the wildcard (`all`).
 */
export function peerMatcher(peer: Peer, requires: readonly EndpointSelector[]): PeerMatcher | undefined {
  switch (peer.kind) {
    case 'endpoints':
      return endpointsMatcher(requires.length ? andSelectors([peer.selector, ...requires]) : peer.selector);
    case 'entity':
      return peer.entity === 'all' ? undefined : entityMatcher(peer.entity);
    case 'cidr':
      return cidrMatcher(peer.cidr, peer.except);
  }
}
