import type { Direction, NamedPort, PolicyEnforcement, PolicyEnforcementMode, PolicyEntry, PolicyKey, PolicySubject } from '@cilia/core';
import type { EndpointSelector, PeerRule, PolicyRule } from '../model.js';
import { ALLOW_ALL_L7, l7Part, type L7Enforcement, type L7Part } from './l7.js';
import { entityMatcher, peerMatcher, type PeerMatcher } from './peers.js';
import { parsePolicyKey, portKeys, type NamedPortLookup, type PortKey } from './ports.js';
import type { SelectionChanges } from './selector-cache.js';
import { selectorKey } from './selectors.js';

/** Where a subject's peer selections come from: the shared cache (watchers) or one-off evaluation. */
export interface SelectionSource {
  acquire(matcher: PeerMatcher): ReadonlySet<number>;
  release(key: string): void;
}

export interface ResolveContext {
  readonly selections: SelectionSource;
  readonly mode: PolicyEnforcementMode;
  readonly allowLocalhost: boolean;
  /** Egress named ports resolve on every watched endpoint (the destination may be any pod). */
  readonly egressNamedPorts: NamedPortLookup;
  /** The L7 proxy, when one is configured: keys with L7 rules get its port and their rules. */
  readonly l7?: L7Enforcement;
}

/** The id Cilium's allow-localhost entry is derived from. */
export const ALLOW_LOCALHOST = 'allow-localhost';

/**
 * The id of the allow-all entry of a direction that only deny rules enforce (their rules turned
 * default deny off): the datapath looks entries up only in an enforced direction, so the
 * direction is enforced and this entry keeps everything the denies do not name passing.
 */
export const ALLOW_ALL_NO_DEFAULT_DENY = 'allow-all (no default deny)';

const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';
const SECTIONS: ReadonlyArray<readonly [Section, Direction, PolicyEntry['verdict']]> = [
  ['ingress', 'ingress', 'allow'],
  ['ingressDeny', 'ingress', 'deny'],
  ['egress', 'egress', 'allow'],
  ['egressDeny', 'egress', 'deny'],
];

/** What one peer rule of one rule adds to a subject: (its peers' identities) × (its ports). */
interface Contribution {
  readonly id: string;
  readonly ruleId: string;
  readonly direction: Direction;
  readonly verdict: PolicyEntry['verdict'];
  /** Selects identity 0 (every peer). */
  readonly wildcard: boolean;
  readonly matchers: readonly PeerMatcher[];
  /** Live selections of `matchers`, index for index. */
  readonly sets: ReadonlyArray<ReadonlySet<number>>;
  readonly ports: readonly PortKey[];
  /** L7 rules by port key (`protocol/port/endPort`), for the parsers the proxy enforces. */
  readonly l7?: ReadonlyMap<string, L7Part>;
}

const TCP = 6;
/** Keys the proxy can take: one TCP port (the datapath redirects TCP; L7 rules name single ports). */
const l7Capable = (port: PortKey): boolean => port.protocol === TCP && port.port > 0 && port.port === port.endPort;

/** One rule's contributions to a key (a rule may contribute the same key several times). */
interface Contributor {
  readonly ruleId: string;
  readonly deny: boolean;
  count: number;
}

/**
 * Everything contributing to one key, and the entry last handed out for it; lives while either
 * is there. Most keys have one contributor, kept inline (no array, no object per contributor):
 * an endpoint has about a thousand keys and a node hundreds of endpoints.
 */
interface Tally {
  /** The inline contributor; undefined when there is none. */
  ruleId: string | undefined;
  deny: boolean;
  count: number;
  /** Contributors beyond the inline one. */
  more?: Contributor[];
  realized?: PolicyEntry;
}

const isEmpty = (t: Tally): boolean => t.ruleId === undefined && !t.more?.length;

function contributorsOf(t: Tally): Contributor[] {
  const all = t.more ? [...t.more] : [];
  if (t.ruleId !== undefined) all.push({ ruleId: t.ruleId, deny: t.deny, count: t.count });
  return all;
}

/** Adds `delta` to one rule's count on a tally, dropping the contributor at zero. */
function count(t: Tally, ruleId: string, deny: boolean, delta: number): void {
  if (t.ruleId === ruleId && t.deny === deny) {
    t.count += delta;
    if (t.count > 0) return;
    const next = t.more?.pop();
    if (next) [t.ruleId, t.deny, t.count] = [next.ruleId, next.deny, next.count];
    else t.ruleId = undefined;
    return;
  }
  if (t.ruleId === undefined) {
    if (delta > 0) [t.ruleId, t.deny, t.count] = [ruleId, deny, delta];
    return;
  }
  const more = (t.more ??= []);
  const i = more.findIndex((x) => x.ruleId === ruleId && x.deny === deny);
  if (i < 0) {
    if (delta > 0) more.push({ ruleId, deny, count: delta });
  } else if ((more[i]!.count += delta) <= 0) {
    more.splice(i, 1);
  }
}

/** The change `flush` found since the last one. */
export interface StateChange {
  readonly upserts: Array<readonly [PolicyKey, PolicyEntry]>;
  readonly deletes: PolicyKey[];
  readonly enforcement?: PolicyEnforcement;
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One endpoint's policy: the rules selecting it, what each of their peer rules contributes,
 * the merged map state (deny beats allow on a key) and its enforcement. Changes mark keys
 * dirty; `flush` turns them into the delta against what was last handed out.
 */
export class SubjectState {
  readonly rules = new Map<string, PolicyRule>();
  readonly #contributions = new Map<string, Contribution>();
  readonly #byRule = new Map<string, string[]>();
  readonly #byMatcher = new Map<string, Set<string>>();
  readonly #tallies = new Map<string, Tally>();
  readonly #dirty = new Set<string>();
  /** Equal entries are one object: most keys of an endpoint share a handful of verdicts. */
  readonly #interned = new Map<string, PolicyEntry>();
  /** With a proxy: the allow contributions of each L7-capable key (by contribution id) and their L7 rules (null: L4 only). */
  readonly #l7 = new Map<string, Map<string, L7Part | null>>();
  #enforcement: PolicyEnforcement = { ingress: false, egress: false };
  #realizedEnforcement: PolicyEnforcement = { ingress: false, egress: false };
  #requires = { ingress: '', egress: '' };
  #requiresSelectors: Record<Direction, EndpointSelector[]> = { ingress: [], egress: [] };
  readonly #ingressNamedPorts: NamedPortLookup;

  constructor(
    readonly subject: PolicySubject,
    private readonly ctx: ResolveContext,
  ) {
    const named = subject.namedPorts ?? {};
    this.#ingressNamedPorts = (name): NamedPort[] => (Object.hasOwn(named, name) ? [named[name]!] : []);
  }

  get enforcement(): PolicyEnforcement {
    return this.#realizedEnforcement;
  }

  /** Sets every selecting rule at once and builds from scratch. */
  load(rules: Iterable<PolicyRule>): void {
    for (const r of rules) this.rules.set(r.id, r);
    this.rebuild();
  }

  addRule(rule: PolicyRule): void {
    this.rules.set(rule.id, rule);
    if (this.#requiresChanged()) return this.rebuild();
    this.#addRuleContributions(rule);
    this.#updateEnforcement();
  }

  removeRule(ruleId: string): void {
    if (!this.rules.delete(ruleId)) return;
    if (this.#requiresChanged()) return this.rebuild();
    for (const id of this.#byRule.get(ruleId) ?? []) this.#removeContribution(id);
    this.#byRule.delete(ruleId);
    this.#updateEnforcement();
  }

  /** Recomputes every contribution (requires or named ports changed); the flush still diffs. */
  rebuild(): void {
    for (const id of [...this.#contributions.keys()]) this.#removeContribution(id);
    this.#byRule.clear();
    this.#requiresChanged();
    for (const rule of this.rules.values()) this.#addRuleContributions(rule);
    this.#updateEnforcement();
  }

  /** Whether an egress rule names a port (so the named-port union matters to this subject). */
  usesEgressNamedPorts(): boolean {
    for (const r of this.rules.values()) for (const pr of [...r.egress, ...r.egressDeny]) if (pr.ports.some((p) => p.name !== undefined)) return true;
    return false;
  }

  /** Applies one identity's selection changes to the contributions built on those selectors. */
  selectionChanged(identityId: number, changes: SelectionChanges): void {
    const touched = new Set<string>();
    for (const key of changes.keys()) for (const c of this.#byMatcher.get(key) ?? []) touched.add(c);
    for (const cid of touched) {
      const c = this.#contributions.get(cid)!;
      const now = c.sets.some((s) => s.has(identityId));
      const before = c.matchers.some((m, i) => (changes.has(m.key) ? !changes.get(m.key) : c.sets[i]!.has(identityId)));
      if (now !== before) this.#tally(c, [identityId], now ? 1 : -1);
    }
  }

  /** Hands out what changed since the last flush and makes it the realized state. */
  flush(): StateChange {
    const upserts: Array<readonly [PolicyKey, PolicyEntry]> = [];
    const deletes: PolicyKey[] = [];
    for (const k of this.#dirty) {
      const tally = this.#tallies.get(k);
      if (!tally) continue;
      const entry = this.#entryOf(tally, k);
      if (!entry) {
        this.#tallies.delete(k);
        if (tally.realized) deletes.push(parsePolicyKey(k));
      } else if (tally.realized !== entry) {
        upserts.push([parsePolicyKey(k), entry]);
        tally.realized = entry;
      }
    }
    this.#dirty.clear();
    const e = this.#enforcement;
    const changed = e.ingress !== this.#realizedEnforcement.ingress || e.egress !== this.#realizedEnforcement.egress;
    this.#realizedEnforcement = e;
    return { upserts, deletes, ...(changed ? { enforcement: e } : {}) };
  }

  /** The realized entries, sorted by key. */
  entries(): Array<readonly [PolicyKey, PolicyEntry]> {
    const out: Array<readonly [string, PolicyEntry]> = [];
    for (const [k, t] of this.#tallies) if (t.realized) out.push([k, t.realized]);
    return out.sort(([a], [b]) => byString(a, b)).map(([k, entry]) => [parsePolicyKey(k), entry] as const);
  }

  /** The merged entry of a key (deny contributors win), interned; undefined when none contributes. */
  #entryOf(t: Tally, key: string): PolicyEntry | undefined {
    if (isEmpty(t)) return undefined;
    let entry: PolicyEntry;
    if (!t.more?.length) entry = this.#intern(t.deny, [t.ruleId!]);
    else {
      const all = contributorsOf(t);
      const deny = all.some((c) => c.deny);
      // Contributors are unique per (rule, verdict), so the winners' rule ids are unique too.
      entry = this.#intern(deny, all.filter((c) => c.deny === deny).map((c) => c.ruleId).sort(byString));
    }
    return entry.verdict === 'allow' ? this.#withL7(entry, key) : entry;
  }

  /**
   * An allowed key some contribution gives L7 rules: redirected to the proxy with the union of
   * its contributions' rules (an L4-only contribution allows every request, as in Cilium). The
   * first parser named wins when contributions disagree.
   */
  #withL7(entry: PolicyEntry, key: string): PolicyEntry {
    const parts = this.#l7.get(key);
    const l7 = this.ctx.l7;
    if (!parts || !l7) return entry;
    const named = [...parts.values()].filter((p): p is L7Part => p !== null);
    if (named.length === 0) return entry;
    const parser = named[0]!.parser;
    const proxyPort = l7.redirectPort(parser, key.split('/')[1] === 'i' ? 'ingress' : 'egress');
    if (proxyPort === undefined) return entry;
    const rules: unknown[] = [];
    for (const p of parts.values()) {
      if (p === null) rules.push(ALLOW_ALL_L7);
      else if (p.parser === parser) rules.push(...p.rules);
    }
    return { ...entry, proxyPort, l7: { parser, rules } };
  }

  #intern(deny: boolean, derivedFrom: string[]): PolicyEntry {
    const id = `${deny ? 'deny' : 'allow'}|${derivedFrom.join('|')}`;
    let entry = this.#interned.get(id);
    if (!entry) this.#interned.set(id, (entry = { verdict: deny ? 'deny' : 'allow', proxyPort: 0, derivedFrom }));
    return entry;
  }

  /** Drops every selector reference (the watcher is gone). */
  dispose(): void {
    for (const c of this.#contributions.values()) for (const m of c.matchers) this.ctx.selections.release(m.key);
    this.#contributions.clear();
    this.#byMatcher.clear();
  }

  #requiresOf(direction: Direction): EndpointSelector[] {
    const byKey = new Map<string, EndpointSelector>();
    for (const r of this.rules.values()) for (const s of direction === 'ingress' ? r.ingressRequires : r.egressRequires) byKey.set(selectorKey(s), s);
    return [...byKey.entries()].sort(([a], [b]) => byString(a, b)).map(([, s]) => s);
  }

  /** Recomputes the subject's requires; true when they differ from those its entries were built with. */
  #requiresChanged(): boolean {
    const selectors = { ingress: this.#requiresOf('ingress'), egress: this.#requiresOf('egress') };
    const next = { ingress: selectors.ingress.map(selectorKey).join('|'), egress: selectors.egress.map(selectorKey).join('|') };
    const changed = next.ingress !== this.#requires.ingress || next.egress !== this.#requires.egress;
    this.#requires = next;
    this.#requiresSelectors = selectors;
    return changed;
  }

  #addRuleContributions(rule: PolicyRule): void {
    const ids: string[] = [];
    const requires = this.#requiresSelectors;
    for (const [section, direction, verdict] of SECTIONS) {
      rule[section].forEach((pr: PeerRule, i) => {
        const id = `${rule.id}|${section}[${i}]`;
        if (this.#addPeerRule(id, rule.id, direction, verdict, pr, requires[direction])) ids.push(id);
      });
    }
    this.#byRule.set(rule.id, ids);
  }

  #addPeerRule(id: string, ruleId: string, direction: Direction, verdict: PolicyEntry['verdict'], pr: PeerRule, requires: readonly EndpointSelector[]): boolean {
    let wildcard = pr.peers === 'all';
    const matchers: PeerMatcher[] = [];
    if (pr.peers !== 'all') {
      for (const peer of pr.peers) {
        const m = peerMatcher(peer, requires);
        if (m) matchers.push(m);
        else wildcard = true;
      }
    }
    const lookup = direction === 'ingress' ? this.#ingressNamedPorts : this.ctx.egressNamedPorts;
    const ports = portKeys(pr.ports, lookup);
    if ((!wildcard && matchers.length === 0) || ports.length === 0) return false;
    const l7 = verdict === 'allow' && this.ctx.l7 ? this.#l7Of(pr, lookup, direction) : undefined;
    this.#addContribution({ id, ruleId, direction, verdict, wildcard, matchers, sets: matchers.map((m) => this.ctx.selections.acquire(m)), ports, ...(l7 ? { l7 } : {}) });
    return true;
  }

  /** A peer rule's L7 rules by port key, for parsers the proxy enforces in `direction`. */
  #l7Of(pr: PeerRule, lookup: NamedPortLookup, direction: Direction): Map<string, L7Part> | undefined {
    if (!Array.isArray(pr.l7) || pr.l7.length === 0) return undefined;
    const out = new Map<string, L7Part>();
    for (const entry of pr.l7 as Array<{ ports: PeerRule['ports']; rules: unknown }>) {
      const part = l7Part(entry.rules);
      if (!part || this.ctx.l7!.redirectPort(part.parser, direction) === undefined) continue;
      for (const port of portKeys(entry.ports, lookup)) {
        if (!l7Capable(port)) continue;
        const k = `${port.protocol}/${port.port}/${port.endPort}`;
        const had = out.get(k);
        out.set(k, had && had.parser === part.parser ? { parser: part.parser, rules: [...had.rules, ...part.rules] } : (had ?? { parser: part.parser, rules: part.rules }));
      }
    }
    return out.size > 0 ? out : undefined;
  }

  #addContribution(c: Contribution): void {
    this.#contributions.set(c.id, c);
    for (const m of c.matchers) {
      let users = this.#byMatcher.get(m.key);
      if (!users) this.#byMatcher.set(m.key, (users = new Set()));
      users.add(c.id);
    }
    this.#tally(c, this.#selected(c), 1);
  }

  #removeContribution(id: string): void {
    const c = this.#contributions.get(id);
    if (!c) return;
    this.#tally(c, this.#selected(c), -1);
    this.#contributions.delete(id);
    for (const m of c.matchers) {
      const users = this.#byMatcher.get(m.key);
      users?.delete(id);
      if (users?.size === 0) this.#byMatcher.delete(m.key);
      this.ctx.selections.release(m.key);
    }
  }

  #selected(c: Contribution): Set<number> {
    const ids = new Set<number>(c.wildcard ? [0] : []);
    for (const s of c.sets) for (const id of s) ids.add(id);
    return ids;
  }

  #tally(c: Contribution, identities: Iterable<number>, delta: 1 | -1): void {
    const deny = c.verdict === 'deny';
    const dir = c.direction === 'ingress' ? 'i' : 'e';
    for (const identity of identities) {
      for (const port of c.ports) {
        // policyKeyString's form; keys are kept as strings only (parsePolicyKey undoes it).
        const k = `${identity}/${dir}/${port.protocol}/${port.port}/${port.endPort}`;
        if (!deny && this.ctx.l7 && l7Capable(port)) this.#tallyL7(k, c, `${port.protocol}/${port.port}/${port.endPort}`, delta);
        const t = this.#tallies.get(k);
        if (t) count(t, c.ruleId, deny, delta);
        else if (delta > 0) this.#tallies.set(k, { ruleId: c.ruleId, deny, count: delta });
        this.#dirty.add(k);
      }
    }
  }

  #tallyL7(key: string, c: Contribution, portKey: string, delta: 1 | -1): void {
    let parts = this.#l7.get(key);
    if (delta > 0) {
      if (!parts) this.#l7.set(key, (parts = new Map()));
      parts.set(c.id, c.l7?.get(portKey) ?? null);
    } else if (parts) {
      parts.delete(c.id);
      if (parts.size === 0) this.#l7.delete(key);
    }
  }

  #updateEnforcement(): void {
    const { mode } = this.ctx;
    const rules = [...this.rules.values()];
    const next: { ingress: boolean; egress: boolean } =
      mode === 'always'
        ? { ingress: true, egress: true }
        : mode === 'never'
          ? { ingress: false, egress: false }
          : { ingress: rules.some((r) => r.enforces.ingress), egress: rules.some((r) => r.enforces.egress) };
    const allowAll = { ingress: false, egress: false };
    if (mode === 'default') {
      for (const direction of DIRECTIONS) {
        if (next[direction] || !rules.some((r) => (direction === 'ingress' ? r.ingressDeny : r.egressDeny).length > 0)) continue;
        next[direction] = true;
        allowAll[direction] = true;
      }
    }
    if (next.ingress !== this.#enforcement.ingress || next.egress !== this.#enforcement.egress) this.#enforcement = next;
    for (const direction of DIRECTIONS) {
      const id = `${ALLOW_ALL_NO_DEFAULT_DENY}|${direction}`;
      const has = this.#contributions.has(id);
      if (allowAll[direction] && !has) {
        const ports = [{ protocol: 0, port: 0, endPort: 0 }];
        this.#addContribution({ id, ruleId: ALLOW_ALL_NO_DEFAULT_DENY, direction, verdict: 'allow', wildcard: true, matchers: [], sets: [], ports });
      } else if (!allowAll[direction] && has) {
        this.#removeContribution(id);
      }
    }
    const wantLocalhost = next.ingress && this.ctx.allowLocalhost;
    const hasLocalhost = this.#contributions.has(ALLOW_LOCALHOST);
    if (wantLocalhost && !hasLocalhost) {
      const host = entityMatcher('host');
      this.#addContribution({
        id: ALLOW_LOCALHOST,
        ruleId: ALLOW_LOCALHOST,
        direction: 'ingress',
        verdict: 'allow',
        wildcard: false,
        matchers: [host],
        sets: [this.ctx.selections.acquire(host)],
        ports: [{ protocol: 0, port: 0, endPort: 0 }],
      });
    } else if (!wantLocalhost && hasLocalhost) {
      this.#removeContribution(ALLOW_LOCALHOST);
    }
  }
}
