import type {
  Cidr,
  IdentityAllocator,
  IdentityEvent,
  IpCache,
  IpCacheEntry,
  Logger,
  NamedPort,
  PolicyDelta,
  PolicyEnforcement,
  PolicyEnforcementMode,
  PolicyEntry,
  PolicyKey,
  PolicyRepository,
  PolicyRevision,
  PolicyRuleInfo,
  PolicySubject,
  Unsubscribe,
} from '@cilia/core';
import type { PolicyFieldError, PolicyRule } from '../model.js';
import { parsePolicyDocument, PolicyValidationError } from '../parse/index.js';
import { l7AtL4Note } from '../parse/ports.js';
import { l7Part, l7RuleSets, type L7Enforcement } from './l7.js';
import { SelectorCache } from './selector-cache.js';
import { selectorMatches } from './selectors.js';
import { SubjectState, type ResolveContext, type SelectionSource } from './subject-state.js';
import { traceVerdict, type TraceQuery, type TraceResult } from './trace.js';

export interface PolicyEngineOptions {
  readonly identities: IdentityAllocator;
  /** Where the CIDR identities of CIDR peers are published (source `generated`). */
  readonly ipcache?: IpCache;
  readonly enforcement: PolicyEnforcementMode;
  /** Cilium's allow-localhost: the host may always reach an endpoint whose ingress is enforced. */
  readonly allowLocalhost: boolean;
  readonly logger: Logger;
  /** The L7 proxy, when one is configured; else L7 rules are enforced at L4. */
  readonly l7?: L7Enforcement;
}

/** One imported document (a policy): every rule it produced. */
interface StoredPolicy {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly revision: PolicyRevision;
  readonly spec: unknown;
  readonly rules: readonly PolicyRule[];
}

interface Watcher {
  readonly state: SubjectState;
  readonly listener: (delta: PolicyDelta) => void;
  /** The L7 rule sets handed to the proxy, by `direction/port` (their JSON, to send changes only). */
  readonly l7: Map<string, string>;
}

type DeleteSelector = { name: string; namespace?: string; kind?: string } | { all: true };

/** Policy names an info line carries at most. */
const LOGGED_POLICY_NAMES = 10;

const policyKeyOf = (p: { kind: string; namespace?: string; name: string }): string => `${p.kind}/${p.namespace ?? ''}/${p.name}`;

/** Kind, namespace and name of a document the parser accepted but that produced no rule (`specs: []`). */
function documentOrigin(doc: unknown): { kind: string; namespace?: string; name: string } {
  const d = doc as { kind?: string; metadata?: { name?: string; namespace?: string } };
  const kind = String(d.kind ?? '');
  const namespace = kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (d.metadata?.namespace ?? 'default');
  return { kind, name: String(d.metadata?.name ?? ''), ...(namespace !== undefined ? { namespace } : {}) };
}

/** Every prefix a rule's CIDR peers need an identity for (each `cidr` and `except`). */
function cidrPrefixes(rule: PolicyRule): Cidr[] {
  const out: Cidr[] = [];
  for (const section of [rule.ingress, rule.ingressDeny, rule.egress, rule.egressDeny]) {
    for (const pr of section) {
      if (pr.peers === 'all') continue;
      for (const peer of pr.peers) if (peer.kind === 'cidr') out.push(peer.cidr, ...peer.except);
    }
  }
  return out;
}

/**
 * The policy repository: rules in, per-endpoint map state out. Peer selectors live in one
 * selector cache kept current from identity events; each watched endpoint keeps its own
 * resolution, so an import touches only the endpoints its rules select and an identity only
 * the entries built on selectors it joined or left. Every import or delete is one revision,
 * delivered to every watcher (empty when it is not affected).
 */
export class PolicyEngine implements PolicyRepository {
  readonly enforcementMode: PolicyEnforcementMode;
  readonly #identities: IdentityAllocator;
  readonly #ipcache: IpCache | undefined;
  readonly #allowLocalhost: boolean;
  readonly #log: Logger;
  readonly #cache = new SelectorCache();
  readonly #policies = new Map<string, StoredPolicy>();
  readonly #rules = new Map<string, PolicyRule>();
  readonly #watchers = new Set<Watcher>();
  /** Prefix → its CIDR identity, for prefixes some stored rule names. */
  readonly #cidrs = new Map<Cidr, number>();
  /** Prefix → how many stored rules name it. */
  readonly #cidrUsers = new Map<Cidr, number>();
  /** Egress named ports: name → every binding among the watched endpoints. */
  #egressNamedPorts = new Map<string, NamedPort[]>();
  #egressNamedPortsKey = '';
  #revision: PolicyRevision = 0;
  #importErrors = 0;
  #imports = 0;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #unwatchIdentities: Unsubscribe;
  readonly #cached: SelectionSource;
  readonly #l7: L7Enforcement | undefined;

  constructor(options: PolicyEngineOptions) {
    this.enforcementMode = options.enforcement;
    this.#identities = options.identities;
    this.#ipcache = options.ipcache;
    this.#allowLocalhost = options.allowLocalhost;
    this.#log = options.logger;
    this.#l7 = options.l7;
    this.#cached = { acquire: (m) => this.#cache.acquire(m), release: (k) => this.#cache.release(k) };
    this.#unwatchIdentities = this.#identities.watch((e) => this.#onIdentity(e), { replay: true });
  }

  /** Stops following identities (watchers get no more deltas from identity changes). */
  close(): void {
    this.#unwatchIdentities();
  }

  revision(): PolicyRevision {
    return this.#revision;
  }

  /** Distinct peer selectors in use by watched endpoints (for tests and metrics). */
  get selectorCount(): number {
    return this.#cache.size;
  }

  /** Normalized rules stored (Cilium's `cilium_policy`). */
  get ruleCount(): number {
    return this.#rules.size;
  }

  /** Imports stored since the engine was built. */
  get imports(): number {
    return this.#imports;
  }

  /** Imports refused or failed since the engine was built; nothing of such an import was stored. */
  get importErrors(): number {
    return this.#importErrors;
  }

  import(documents: readonly unknown[]): Promise<PolicyRevision> {
    const issuedAt = performance.timeOrigin + performance.now();
    return this.#countFailure(this.#exclusive(async () => {
      const results = documents.map((doc, i) => parsePolicyDocument(doc, { path: `documents[${i}]` }));
      const errors = results.flatMap((r) => (r.ok ? [] : r.errors));
      results.forEach((r, i) => r.ok && errors.push(...this.#checkL7(r.rules, `documents[${i}]`)));
      if (errors.length > 0) throw new PolicyValidationError(errors);
      const policies = results.map((r, i) => {
        const rules = r.ok ? r.rules.map((rule) => this.#withoutL7Notes(rule)) : [];
        const origin = rules[0]?.origin ?? documentOrigin(documents[i]);
        return { kind: origin.kind, ...(origin.namespace !== undefined ? { namespace: origin.namespace } : {}), name: origin.name, spec: documents[i], rules };
      });
      return this.#store(policies, issuedAt);
    }));
  }

  /**
   * Imports already-normalized rules (sources that build the model themselves, tests, benches):
   * rules are grouped into policies by origin, each replacing a stored one of the same
   * kind, namespace and name.
   */
  importRules(rules: readonly PolicyRule[]): Promise<PolicyRevision> {
    const issuedAt = performance.timeOrigin + performance.now();
    return this.#countFailure(this.#exclusive(() => {
      const byPolicy = new Map<string, PolicyRule[]>();
      for (const r of rules) {
        const key = policyKeyOf(r.origin);
        const list = byPolicy.get(key);
        if (list) list.push(r);
        else byPolicy.set(key, [r]);
      }
      const policies = [...byPolicy.values()].map((rs) => {
        const { kind, namespace, name } = rs[0]!.origin;
        return { kind, ...(namespace !== undefined ? { namespace } : {}), name, spec: rs, rules: rs };
      });
      return this.#store(policies, issuedAt);
    }));
  }

  delete(selector: DeleteSelector): Promise<PolicyRevision> {
    const issuedAt = performance.timeOrigin + performance.now();
    return this.#exclusive(async () => {
      const matched = [...this.#policies.entries()].filter(([, p]) =>
        'all' in selector
          ? selector.all === true
          : p.name === selector.name && (selector.namespace === undefined || (p.namespace ?? '') === selector.namespace) && (selector.kind === undefined || p.kind === selector.kind),
      );
      if (matched.length === 0) {
        const what = 'all' in selector ? 'no policy is stored' : `no policy named ${JSON.stringify(selector.name)}${selector.namespace !== undefined ? ` in namespace ${JSON.stringify(selector.namespace)}` : ''}${selector.kind ? ` of kind ${selector.kind}` : ''}`;
        throw new Error(`policy delete: ${what}`);
      }
      const started = performance.now();
      const revision = ++this.#revision;
      for (const [key, p] of matched) {
        for (const r of p.rules) this.#removeRule(r);
        this.#policies.delete(key);
      }
      const affected = this.#deliver(revision, false, issuedAt);
      this.#logChange('policies deleted', matched.map(([k]) => k), { revision, affectedEndpoints: affected, ms: +(performance.now() - started).toFixed(2) });
      await this.#releaseUnusedCidrs();
      return revision;
    });
  }

  /** Field errors of the L7 rules of parsers the proxy enforces (an invalid regex, an unknown Kafka role, …). */
  #checkL7(rules: readonly PolicyRule[], document: string): PolicyFieldError[] {
    const l7 = this.#l7;
    if (!l7) return [];
    const errors: PolicyFieldError[] = [];
    for (const rule of rules) {
      for (const [section, direction] of [['ingress', 'ingress'], ['egress', 'egress']] as const) {
        for (const pr of rule[section]) {
          for (const entry of (pr.l7 ?? []) as Array<{ rules: unknown; path: string }>) {
            const part = l7Part(entry.rules);
            if (part && l7.redirectPort(part.parser, direction) !== undefined) errors.push(...l7.validate(part.parser, part.rules, `${document}.${entry.path}.${part.field}`));
          }
        }
      }
    }
    return errors;
  }

  /** A rule without the "enforced at L4" notes of L7 rules the proxy enforces. */
  #withoutL7Notes(rule: PolicyRule): PolicyRule {
    const l7 = this.#l7;
    if (!l7) return rule;
    const enforced = new Set<string>();
    for (const [section, direction] of [['ingress', 'ingress'], ['egress', 'egress']] as const) {
      for (const pr of rule[section]) {
        for (const entry of (pr.l7 ?? []) as Array<{ rules: unknown; path: string }>) {
          const part = l7Part(entry.rules);
          if (part && l7.redirectPort(part.parser, direction) !== undefined) enforced.add(l7AtL4Note(entry.path));
        }
      }
    }
    return enforced.size === 0 ? rule : { ...rule, notes: rule.notes.filter((n) => !enforced.has(n)) };
  }

  /** Hands the proxy the L7 rule sets of a watched endpoint that changed. */
  #publishL7(w: Watcher): void {
    const l7 = this.#l7;
    if (!l7) return;
    const endpointId = w.state.subject.endpointId;
    const sets = l7RuleSets(endpointId, w.state.entries());
    for (const [id, set] of sets) {
      const json = JSON.stringify(set);
      if (w.l7.get(id) === json) continue;
      w.l7.set(id, json);
      l7.publish(set);
    }
    for (const id of [...w.l7.keys()]) {
      if (sets.has(id)) continue;
      w.l7.delete(id);
      const [direction, port] = id.split('/') as ['ingress' | 'egress', string];
      l7.withdraw(endpointId, direction, Number(port));
    }
  }

  rules(): readonly PolicyRuleInfo[] {
    return [...this.#policies.values()]
      .sort((a, b) => (policyKeyOf(a) < policyKeyOf(b) ? -1 : 1))
      .map((p) => ({
        kind: p.kind,
        ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
        name: p.name,
        revision: p.revision,
        notes: [...new Set(p.rules.flatMap((r) => r.notes))],
        spec: p.spec,
      }));
  }

  /** The stored normalized rules (for trace and debugging). */
  normalizedRules(): readonly PolicyRule[] {
    return [...this.#rules.values()];
  }

  resolve(subject: PolicySubject): { revision: PolicyRevision; enforcement: PolicyEnforcement; entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]> } {
    const selections: SelectionSource = { acquire: (m) => this.#cache.peek(m), release: () => {} };
    const state = new SubjectState(subject, this.#context(selections, subject));
    state.load(this.#rulesSelecting(subject));
    state.flush();
    return { revision: this.#revision, enforcement: state.enforcement, entries: state.entries() };
  }

  watch(subject: PolicySubject, listener: (delta: PolicyDelta) => void): Unsubscribe {
    const watcher: Watcher = { state: new SubjectState(subject, this.#context(this.#cached)), listener, l7: new Map() };
    this.#watchers.add(watcher);
    const portsChanged = this.#updateEgressNamedPorts();
    watcher.state.load(this.#rulesSelecting(subject));
    watcher.state.flush();
    this.#publishL7(watcher);
    if (portsChanged) this.#rebuildNamedPortUsers(watcher);
    return () => {
      if (!this.#watchers.delete(watcher)) return;
      watcher.state.dispose();
      for (const id of watcher.l7.keys()) {
        const [direction, port] = id.split('/') as ['ingress' | 'egress', string];
        this.#l7?.withdraw(subject.endpointId, direction, Number(port));
      }
      if (this.#updateEgressNamedPorts()) this.#rebuildNamedPortUsers();
    };
  }

  trace(query: TraceQuery): TraceResult {
    return traceVerdict(query, {
      rules: [...this.#rules.values()],
      mode: this.enforcementMode,
      allowLocalhost: this.#allowLocalhost,
      identities: this.#identities,
      egressNamedPorts: (name) => this.#egressNamedPorts.get(name) ?? [],
      ingressNamedPorts: (labels) => this.#namedPortsOfLabels(labels),
    });
  }

  /** Stores policies as one revision: CIDR identities first, then the rules, then the deltas. */
  async #store(policies: ReadonlyArray<Omit<StoredPolicy, 'revision'>>, issuedAt: number): Promise<PolicyRevision> {
    const incoming = new Map(policies.map((p) => [policyKeyOf(p), p]));
    await this.#allocateCidrs([...incoming.values()].flatMap((p) => p.rules));
    const started = performance.now();
    const revision = ++this.#revision;
    for (const [key, p] of incoming) {
      for (const r of this.#policies.get(key)?.rules ?? []) this.#removeRule(r);
      this.#policies.set(key, { ...p, revision });
      for (const r of p.rules) this.#addRule(r);
    }
    const affected = this.#deliver(revision, false, issuedAt);
    this.#logChange('policies imported', [...incoming.keys()], { revision, affectedEndpoints: affected, ms: +(performance.now() - started).toFixed(2) });
    await this.#releaseUnusedCidrs();
    return revision;
  }

  /**
   * One info line per import or delete: how many policies and a few of their names — a set of
   * thousands would make a line of hundreds of kilobytes. Every name only at debug level.
   */
  #logChange(message: string, keys: readonly string[], fields: Record<string, unknown>): void {
    const more = keys.length - LOGGED_POLICY_NAMES;
    this.#log.info({ ...fields, policies: keys.length, names: keys.slice(0, LOGGED_POLICY_NAMES), ...(more > 0 ? { moreNames: more } : {}) }, message);
    if (more > 0) this.#log.debug({ revision: fields.revision, names: keys }, `${message}: every name`);
  }

  #addRule(rule: PolicyRule): void {
    this.#rules.set(rule.id, rule);
    for (const p of new Set(cidrPrefixes(rule))) this.#cidrUsers.set(p, (this.#cidrUsers.get(p) ?? 0) + 1);
    if (this.enforcementMode === 'never') return;
    for (const w of this.#watchers) if (selectorMatches(rule.subject, w.state.subject.labels)) w.state.addRule(rule);
  }

  #removeRule(rule: PolicyRule): void {
    this.#rules.delete(rule.id);
    for (const p of new Set(cidrPrefixes(rule))) {
      const n = (this.#cidrUsers.get(p) ?? 0) - 1;
      if (n > 0) this.#cidrUsers.set(p, n);
      else this.#cidrUsers.delete(p);
    }
    for (const w of this.#watchers) if (w.state.rules.has(rule.id)) w.state.removeRule(rule.id);
  }

  #rulesSelecting(subject: PolicySubject): PolicyRule[] {
    if (this.enforcementMode === 'never') return [];
    return [...this.#rules.values()].filter((r) => selectorMatches(r.subject, subject.labels));
  }

  #context(selections: SelectionSource, extra?: PolicySubject): ResolveContext {
    const own = extra?.namedPorts ?? {};
    return {
      selections,
      mode: this.enforcementMode,
      allowLocalhost: this.#allowLocalhost,
      ...(this.#l7 ? { l7: this.#l7 } : {}),
      egressNamedPorts: (name) => {
        const known = this.#egressNamedPorts.get(name) ?? [];
        const mine = Object.hasOwn(own, name) ? own[name]! : undefined;
        return mine && !known.some((p) => p.port === mine.port && p.protocol === mine.protocol) ? [...known, mine] : known;
      },
    };
  }

  /**
   * One delta per watcher at `revision` (empty when unaffected); returns how many changed.
   * `issuedAt`: when the import or delete behind the revision was requested.
   */
  #deliver(revision: PolicyRevision, onlyChanged = false, issuedAt?: number): number {
    let affected = 0;
    for (const w of this.#watchers) {
      const change = w.state.flush();
      const empty = change.upserts.length === 0 && change.deletes.length === 0 && change.enforcement === undefined;
      if (!empty) affected++;
      if (!empty) this.#publishL7(w);
      if (empty && onlyChanged) continue;
      try {
        w.listener({ revision, ...change, ...(issuedAt !== undefined ? { issuedAt } : {}) });
      } catch (err) {
        this.#log.error({ err, endpointId: w.state.subject.endpointId, revision }, 'policy watcher threw on a delta');
      }
    }
    return affected;
  }

  #onIdentity(event: IdentityEvent): void {
    const changes = this.#cache.apply(event);
    if (changes.size === 0) return;
    for (const w of this.#watchers) w.state.selectionChanged(event.identity.id, changes);
    const affected = this.#deliver(this.#revision, true);
    this.#log.debug({ identity: event.identity.id, type: event.type, selectors: changes.size, affectedEndpoints: affected }, 'identity change applied to policy');
  }

  /** Recomputes the egress named-port union; true when it changed. */
  #updateEgressNamedPorts(): boolean {
    const union = new Map<string, NamedPort[]>();
    for (const w of this.#watchers) {
      for (const [name, p] of Object.entries(w.state.subject.namedPorts ?? {})) {
        const list = union.get(name) ?? [];
        if (!list.some((q) => q.port === p.port && q.protocol === p.protocol)) list.push(p);
        union.set(name, list);
      }
    }
    for (const list of union.values()) list.sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1));
    const key = JSON.stringify([...union.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    this.#egressNamedPorts = union;
    const changed = key !== this.#egressNamedPortsKey;
    this.#egressNamedPortsKey = key;
    return changed;
  }

  /** Egress named ports changed: re-resolve every watcher whose egress rules name ports. */
  #rebuildNamedPortUsers(except?: Watcher): void {
    for (const w of this.#watchers) if (w !== except && w.state.usesEgressNamedPorts()) w.state.rebuild();
    this.#deliver(this.#revision, true);
  }

  /** Named ports of the watched endpoint with exactly these labels, else of every watched one. */
  #namedPortsOfLabels(labels: PolicySubject['labels']): (name: string) => readonly NamedPort[] {
    const same = (a: PolicySubject['labels'], b: PolicySubject['labels']): boolean =>
      Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
    const match = [...this.#watchers].find((w) => same(w.state.subject.labels, labels));
    if (!match) return (name) => this.#egressNamedPorts.get(name) ?? [];
    const own = match.state.subject.namedPorts ?? {};
    return (name) => (Object.hasOwn(own, name) ? [own[name]!] : []);
  }

  async #allocateCidrs(rules: readonly PolicyRule[]): Promise<void> {
    const wanted = [...new Set(rules.flatMap(cidrPrefixes))].filter((p) => !this.#cidrs.has(p));
    if (wanted.length === 0) return;
    const upserts: IpCacheEntry[] = [];
    try {
      for (const prefix of wanted) {
        const identity = await this.#identities.allocateCidr(prefix);
        this.#cidrs.set(prefix, identity.id);
        upserts.push({ prefix, identity: identity.id, source: 'generated' });
      }
    } catch (err) {
      // Nothing is stored yet; the identities taken so far go back unless a stored rule uses them.
      await this.#releaseUnusedCidrs();
      throw err;
    }
    await this.#ipcache?.apply({ upserts, deletes: [] });
  }

  async #releaseUnusedCidrs(): Promise<void> {
    const deletes: Cidr[] = [];
    for (const [prefix, id] of this.#cidrs) {
      if (this.#cidrUsers.has(prefix)) continue;
      this.#cidrs.delete(prefix);
      deletes.push(prefix);
      try {
        await this.#identities.release(id);
      } catch (err) {
        this.#log.warn({ err, prefix, identity: id }, 'cannot release a CIDR identity');
      }
    }
    if (deletes.length > 0) await this.#ipcache?.apply({ upserts: [], deletes, deleteSource: 'generated' });
  }

  #countFailure<T>(run: Promise<T>): Promise<T> {
    run.then(
      () => this.#imports++,
      () => this.#importErrors++,
    );
    return run;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
