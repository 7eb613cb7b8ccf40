import type { z } from 'zod';
import type { AnyToken, Token } from './token.js';
import type { AgentConfig } from './services/config.js';
import type { BpfObjectSpec } from './services/datapath.js';
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
  /** Its compiled BPF objects and the slots they fill. */
  readonly bpf?: readonly BpfObjectSpec[];
  /** Binds the provided tokens. Runs before anything starts; must not do I/O. */
  register(bind: Binder, context: PluginContext<C>): void;
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
