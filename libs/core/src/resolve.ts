import semver from 'semver';
import type { AnyPluginDefinition } from './plugin.js';
import type { AnyToken } from './token.js';
import { Tokens } from './tokens.js';

/** A plugin as offered to resolution. */
export interface PluginCandidate {
  readonly definition: AnyPluginDefinition;
  /** `default`: part of the agent's base module, replaceable; `configured`: named in config. */
  readonly origin: 'default' | 'configured';
}

/** The outcome of resolution: the plugins to run, in start order, and who provides what. */
export interface ResolvedPluginSet {
  /** Start order (dependencies first). Stop in reverse. */
  readonly order: readonly PluginCandidate[];
  /** token id → the plugins whose binding of it is used. */
  readonly providers: ReadonlyMap<symbol, readonly AnyPluginDefinition[]>;
  /** Plugin name → the plugins it depends on. */
  readonly dependsOn: ReadonlyMap<string, readonly string[]>;
}

/** A refused plugin set. `problems` lists every reason; the message joins them. */
export class PluginSetError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`refusing the plugin set:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PluginSetError';
  }
}

/** Options of {@link resolvePluginSet}. */
export interface ResolveOptions {
  /** Version of `@cilia/core` the agent runs; each plugin's `apiVersion` must admit it. */
  readonly coreVersion: string;
  /** Tokens the agent binds itself (Logger, AgentConfig, Lifecycle). */
  readonly hostTokens: readonly AnyToken[];
}

/**
 * Checks a plugin set before anything starts and orders it. Refuses, naming the plugins and
 * tokens involved: an apiVersion that does not admit the core version, a duplicate plugin,
 * a required token with no provider, two providers of a single-provider token, a cycle.
 */
export function resolvePluginSet(candidates: readonly PluginCandidate[], options: ResolveOptions): ResolvedPluginSet {
  const problems: string[] = [];
  const hostIds = new Set(options.hostTokens.map((t) => t.id));

  checkApiVersions(candidates, options.coreVersion, problems);
  checkDuplicates(candidates, problems);

  const replaced = new Map<symbol, string>();
  for (const c of candidates) {
    if (c.origin !== 'configured') continue;
    for (const t of c.definition.replaces ?? []) replaced.set(t.id, c.definition.name);
  }
  // A default is dropped from the set once every token it provides has been taken over.
  const active = candidates.filter(
    (c) => c.origin === 'configured' || !(c.definition.provides ?? []).every((t) => replaced.has(t.id)) || (c.definition.provides ?? []).length === 0,
  );

  const providers = collectProviders(active, replaced, hostIds, problems);
  const dependsOn = collectDependencies(active, providers, hostIds, problems);
  checkDatapathObjects(active, providers, problems);
  if (problems.length > 0) throw new PluginSetError(problems);

  const order = topologicalOrder(active, dependsOn);
  return { order, providers, dependsOn };
}

function checkApiVersions(candidates: readonly PluginCandidate[], coreVersion: string, problems: string[]): void {
  for (const { definition: d } of candidates) {
    if (semver.validRange(d.apiVersion) === null) {
      problems.push(`plugin ${d.name}: apiVersion ${JSON.stringify(d.apiVersion)} is not a semver range`);
    } else if (!semver.satisfies(coreVersion, d.apiVersion)) {
      problems.push(`plugin ${d.name}: apiVersion ${d.apiVersion} does not admit @cilia/core ${coreVersion} (this agent's plugin API)`);
    }
  }
}

function checkDuplicates(candidates: readonly PluginCandidate[], problems: string[]): void {
  const seen = new Set<string>();
  for (const { definition: d } of candidates) {
    if (seen.has(d.name)) problems.push(`plugin ${d.name} is listed twice`);
    seen.add(d.name);
  }
}

function collectProviders(
  active: readonly PluginCandidate[],
  replaced: ReadonlyMap<symbol, string>,
  hostIds: ReadonlySet<symbol>,
  problems: string[],
): Map<symbol, AnyPluginDefinition[]> {
  const providers = new Map<symbol, AnyPluginDefinition[]>();
  const tokens = new Map<symbol, AnyToken>();
  for (const c of active) {
    for (const t of c.definition.provides ?? []) {
      if (hostIds.has(t.id)) {
        problems.push(`plugin ${c.definition.name} provides ${t.name}, which the agent itself provides`);
        continue;
      }
      if (c.origin === 'default' && replaced.has(t.id)) continue;
      tokens.set(t.id, t);
      providers.set(t.id, [...(providers.get(t.id) ?? []), c.definition]);
    }
  }
  for (const [id, list] of providers) {
    const token = tokens.get(id)!;
    if (token.multiple || list.length < 2) continue;
    const defaults = list.filter((p) => active.find((c) => c.definition === p)?.origin === 'default');
    const names = list.map((p) => p.name).join(' and ');
    const hint = defaults.length > 0 ? `; to take over ${defaults[0]!.name}'s default, list ${token.name} in replaces` : '';
    problems.push(`${token.name} has more than one provider: ${names} (a single-provider token)${hint}`);
  }
  return providers;
}

function collectDependencies(
  active: readonly PluginCandidate[],
  providers: ReadonlyMap<symbol, readonly AnyPluginDefinition[]>,
  hostIds: ReadonlySet<symbol>,
  problems: string[],
): Map<string, string[]> {
  const dependsOn = new Map<string, string[]>();
  for (const { definition: d } of active) {
    const deps = new Set<string>();
    for (const t of d.requires ?? []) {
      if (hostIds.has(t.id)) continue;
      const p = providers.get(t.id);
      if (!p || p.length === 0) problems.push(`plugin ${d.name} requires ${t.name}, which no plugin in the set provides`);
      for (const q of p ?? []) if (q.name !== d.name) deps.add(q.name);
    }
    for (const t of d.optional ?? []) {
      for (const q of providers.get(t.id) ?? []) if (q.name !== d.name) deps.add(q.name);
    }
    dependsOn.set(d.name, [...deps]);
  }
  const cycle = findCycle(dependsOn);
  if (cycle) problems.push(`dependency cycle: ${describeCycle(cycle, active, providers)}`);
  return dependsOn;
}

/**
 * Objects need a datapath to install them, and two plugins cannot fill one slot. The datapath is
 * not a start-order dependency: objects install before the base programs load (the slot table
 * is pinned by whichever object comes first), and the datapath itself may need an object's
 * plugin (an overlay's MTU overhead).
 */
function checkDatapathObjects(active: readonly PluginCandidate[], providers: ReadonlyMap<symbol, readonly AnyPluginDefinition[]>, problems: string[]): void {
  const filledBy = new Map<string, string>();
  for (const { definition: d } of active) {
    if ((d.bpf ?? []).length === 0) continue;
    if (!providers.get(Tokens.Datapath.id)?.length) problems.push(`plugin ${d.name} declares BPF objects (bpf:), which need a provider of ${Tokens.Datapath.name}; none is in the set`);
    for (const spec of d.bpf ?? []) {
      for (const [program, where] of Object.entries(spec.programs ?? {})) {
        const place = `${where.attach}/${where.slot}`;
        const other = filledBy.get(place);
        if (other && other !== d.name) problems.push(`plugins ${other} and ${d.name} both fill the ${place} slot (${d.name}: ${program}); only one may`);
        else filledBy.set(place, d.name);
      }
    }
  }
}

function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const found = visit(m);
      if (found) return found;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of graph.keys()) {
    const found = visit(n);
    if (found) return found;
  }
  return undefined;
}

/** "a needs cilia.X from b, b needs cilia.Y from a". */
function describeCycle(
  cycle: readonly string[],
  active: readonly PluginCandidate[],
  providers: ReadonlyMap<symbol, readonly AnyPluginDefinition[]>,
): string {
  const links: string[] = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const from = active.find((c) => c.definition.name === cycle[i])!.definition;
    const to = cycle[i + 1]!;
    const via = [...(from.requires ?? []), ...(from.optional ?? [])].filter((t) =>
      (providers.get(t.id) ?? []).some((p) => p.name === to),
    );
    links.push(`${from.name} needs ${via.map((t) => t.name).join(', ')} from ${to}`);
  }
  return links.join(', ');
}

/** Kahn's algorithm, taking ready plugins in their listed order so start order is stable. */
function topologicalOrder(active: readonly PluginCandidate[], dependsOn: ReadonlyMap<string, readonly string[]>): PluginCandidate[] {
  const done = new Set<string>();
  const order: PluginCandidate[] = [];
  const pending = [...active];
  while (pending.length > 0) {
    const i = pending.findIndex((c) => (dependsOn.get(c.definition.name) ?? []).every((d) => done.has(d)));
    const [next] = pending.splice(i, 1);
    order.push(next!);
    done.add(next!.definition.name);
  }
  return order;
}
