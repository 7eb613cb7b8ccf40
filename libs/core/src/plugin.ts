import type { z } from 'zod';
import type { AnyToken, Token } from './token.js';
import type { AgentConfig } from './services/config.js';
import { SLOTTED_ATTACH_POINTS, type BpfObjectSpec, type LoadedBpfObject } from './services/datapath.js';
import type { Logger } from './services/logger.js';

/** Looks services up in the container. */
export interface Resolver {
  /** The single provider's value; throws if the token is not bound. */
  get<T>(token: Token<T>): T;
  /** Every provider's value (for `multiple` tokens); empty if none. */
  getAll<T>(token: Token<T>): T[];
  /** The value, or `undefined` when nothing provides the token. */
  getOptional<T>(token: Token<T>): T | undefined;
}

/** The second half of `bind(token)`: what the token is bound to. Values are singletons. */
export interface BindTo<T> {
  /** A value built already. */
  toConstant(value: T): void;
  /** Built once, lazily, when first resolved; `resolver` sees the plugin's declared tokens. */
  toFactory(factory: (resolver: Resolver) => T): void;
}

/** Binds one of the tokens a plugin declared in `provides`. */
export type Binder = <T>(token: Token<T>) => BindTo<T>;

/** A plugin's declared BPF objects, as the agent loaded and installed them. */
export interface PluginBpf {
  /**
   * One of them by its name (see `BpfObjectSpec.name`; may be left out when the plugin declares
   * one object). From just before `start` until after `stop`; throws outside that.
   */
  object(name?: string): LoadedBpfObject;
}

/**
 * What `register` may return: the start and stop of what it built, closing over it — so a
 * plugin's services and their lifecycle live together, with no module-level state and no
 * casts back to concrete classes. They run after the plugin's objects are installed, before
 * the definition's own `start` (and after its `stop`).
 */
export interface PluginHooks {
  start?(): Promise<void> | void;
  /** `signal` aborts when the shutdown budget is spent. */
  stop?(signal: AbortSignal): Promise<void> | void;
}

/** What a plugin gets in `register`, `start` and `stop`. */
export interface PluginContext<C> {
  /** The plugin's own config section, validated, defaults applied. */
  readonly config: C;
  /** The agent's instance settings (node name, state directory, pin root, …). */
  readonly agent: AgentConfig;
  /** A logger whose lines carry `subsys: <plugin name>`. */
  readonly logger: Logger;
  /** The container, limited to the tokens the plugin declared. */
  readonly resolver: Resolver;
  /** Its declared BPF objects, once installed. */
  readonly bpf: PluginBpf;
}

/**
 * A plugin: a value describing what it provides and needs, never a side effect at import.
 * Export it as the module's default export (or as `plugin`).
 */
export interface PluginDefinition<C = unknown> {
  /** The npm package name, e.g. `@cilia/plugin-overlay-vxlan`. */
  readonly name: string;
  /** The plugin's own version (its package version). */
  readonly version: string;
  /** Semver range of `@cilia/core` this plugin was written against, e.g. `^1`. */
  readonly apiVersion: string;
  /** One line for `cilia plugin list`. */
  readonly description?: string;
  /**
   * Key of this plugin's section in the agent config. Default: the name without its npm
   * scope and without a `plugin-` / `cilia-plugin-` prefix (`@cilia/plugin-overlay-vxlan`
   * → `overlay-vxlan`).
   */
  readonly configKey?: string;
  /** Schema of the plugin's config section, with defaults. Unknown keys are refused. */
  readonly config?: z.ZodType<C>;
  /** Tokens this plugin binds in `register`. */
  readonly provides?: readonly AnyToken[];
  /** Tokens it needs; the set is refused if one has no provider. */
  readonly requires?: readonly AnyToken[];
  /** Tokens it uses when present. */
  readonly optional?: readonly AnyToken[];
  /** Default providers (of the agent's base module) this plugin takes over from. */
  readonly replaces?: readonly AnyToken[];
  /**
   * Its compiled BPF objects, the slots their programs fill and their load-time constants. The
   * agent installs them just before `start`; a plugin never writes the slot table itself.
   */
  readonly bpf?: readonly BpfObjectSpec<C>[];
  /**
   * Binds the provided tokens. Runs before anything starts; must not do I/O. May return the
   * start and stop of what it built ({@link PluginHooks}).
   */
  register(bind: Binder, context: PluginContext<C>): PluginHooks | void;
  /** Runs after every plugin it depends on has started. */
  start?(context: PluginContext<C>): Promise<void> | void;
  /** Runs before those plugins stop; `signal` aborts when the shutdown budget is spent. */
  stop?(context: PluginContext<C>, signal: AbortSignal): Promise<void> | void;
}

/** A plugin whose config type is not known statically. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPluginDefinition = PluginDefinition<any>;

const NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

/**
 * Declares a plugin. Checks the definition's shape at once, so a malformed third-party plugin
 * fails where it is written, with the field named.
 */
export function definePlugin<C>(definition: PluginDefinition<C>): PluginDefinition<C> {
  const problems: string[] = [];
  const d = definition as Partial<PluginDefinition<C>>;
  if (typeof d.name !== 'string' || !NAME.test(d.name)) problems.push(`name: must be an npm package name, got ${JSON.stringify(d.name)}`);
  if (typeof d.version !== 'string' || d.version === '') problems.push('version: must be a non-empty string');
  if (typeof d.apiVersion !== 'string' || d.apiVersion === '') problems.push('apiVersion: must be a semver range of @cilia/core, e.g. "^1"');
  if (typeof d.register !== 'function') problems.push('register: must be a function');
  for (const field of ['provides', 'requires', 'optional', 'replaces'] as const) {
    const list = d[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((t) => typeof t?.id !== 'symbol' || typeof t?.name !== 'string')) {
      problems.push(`${field}: must be a list of tokens made by defineToken`);
    }
  }
  for (const t of d.replaces ?? []) {
    if (!(d.provides ?? []).some((p) => p.id === t.id)) problems.push(`replaces: ${t.name} must also be listed in provides`);
  }
  problems.push(...bpfProblems(d.bpf));
  if (problems.length > 0) {
    throw new TypeError(`invalid plugin definition ${JSON.stringify(d.name ?? '?')}: ${problems.join('; ')}`);
  }
  return Object.freeze({ ...definition });
}

/** The config section key of a plugin (see {@link PluginDefinition.configKey}). */
export function pluginConfigKey(plugin: Pick<PluginDefinition, 'name' | 'configKey'>): string {
  if (plugin.configKey) return plugin.configKey;
  const bare = plugin.name.replace(/^@[^/]+\//, '');
  return bare.replace(/^cilia-plugin-/, '').replace(/^plugin-/, '');
}

/** The base name of an object file without `.o`: the default name of a {@link BpfObjectSpec}. */
export function bpfObjectName(spec: Pick<BpfObjectSpec, 'name' | 'object'>): string {
  if (spec.name) return spec.name;
  const path = typeof spec.object === 'string' ? spec.object : spec.object.pathname;
  return (path.split('/').pop() ?? path).replace(/\.o$/, '');
}

const PROGRAM = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bpfProblems(bpf: unknown): string[] {
  if (bpf === undefined) return [];
  if (!Array.isArray(bpf)) return ['bpf: must be a list of objects ({ object, programs?, constants? })'];
  const problems: string[] = [];
  const names = new Set<string>();
  const filled = new Map<string, string>();
  bpf.forEach((spec: Partial<BpfObjectSpec>, i) => {
    const at = `bpf[${i}]`;
    if (typeof spec?.object !== 'string' && !(spec?.object instanceof URL)) {
      problems.push(`${at}.object: must be a path or file URL of the .o`);
      return;
    }
    if (spec.name !== undefined && (typeof spec.name !== 'string' || spec.name === '')) problems.push(`${at}.name: must be a non-empty string`);
    const name = bpfObjectName(spec as BpfObjectSpec);
    if (names.has(name)) problems.push(`${at}: another object is also named ${JSON.stringify(name)}; give one a name`);
    names.add(name);
    if (spec.constants !== undefined && typeof spec.constants !== 'function') problems.push(`${at}.constants: must be a function of the plugin context`);
    if (spec.enabled !== undefined && typeof spec.enabled !== 'function') problems.push(`${at}.enabled: must be a function of the plugin context`);
    const programs = spec.programs ?? {};
    if (typeof programs !== 'object' || programs === null) {
      problems.push(`${at}.programs: must map program names to { attach, slot }`);
      return;
    }
    for (const [program, where] of Object.entries(programs)) {
      const field = `${at}.programs.${program}`;
      if (!PROGRAM.test(program)) problems.push(`${field}: not a C function name`);
      const slots = SLOTTED_ATTACH_POINTS[where?.attach as keyof typeof SLOTTED_ATTACH_POINTS];
      if (!slots) {
        problems.push(`${field}.attach: ${JSON.stringify(where?.attach)} has no slots (one of ${Object.keys(SLOTTED_ATTACH_POINTS).join(', ')})`);
        continue;
      }
      if (!slots.includes(where.slot)) {
        problems.push(`${field}.slot: ${JSON.stringify(where.slot)} is not a slot of ${where.attach} (one of ${slots.join(', ')})`);
        continue;
      }
      const place = `${where.attach}/${where.slot}`;
      if (filled.has(place)) problems.push(`${field}: ${place} is filled by ${filled.get(place)} already`);
      filled.set(place, program);
    }
  });
  return problems;
}
