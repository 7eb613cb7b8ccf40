import { Container } from 'inversify';
import { LifecycleRunner, StartError } from './lifecycle.js';
import type { AnyPluginDefinition, BindTo, Binder, PluginContext, Resolver } from './plugin.js';
import type { ResolvedPluginSet } from './resolve.js';
import type { AgentConfig } from './services/config.js';
import type { HookState } from './services/lifecycle.js';
import type { Logger } from './services/logger.js';
import type { AnyToken, Token } from './token.js';
import { Tokens } from './tokens.js';

/** A plugin's state as status reports it. */
export interface PluginStatus {
  readonly name: string;
  readonly version: string;
  readonly origin: 'default' | 'configured';
  readonly state: HookState;
  readonly provides: readonly string[];
  readonly requires: readonly string[];
  readonly error?: string;
}

/** Inputs of {@link PluginHost}. */
export interface PluginHostOptions {
  readonly set: ResolvedPluginSet;
  readonly agent: AgentConfig;
  readonly logger: Logger;
  /** Each plugin's validated config section, by plugin name. */
  readonly sections: ReadonlyMap<string, unknown>;
}

/**
 * Wires a resolved plugin set into an inversify container with explicit tokens (no decorator
 * metadata) and runs it: every plugin's provided services are built in dependency order,
 * then each plugin's start hook runs; stop runs in reverse.
 */
export class PluginHost {
  readonly container = new Container();
  readonly lifecycle = new LifecycleRunner();
  readonly #options: PluginHostOptions;
  readonly #contexts = new Map<string, PluginContext<unknown>>();

  constructor(options: PluginHostOptions) {
    this.#options = options;
    this.container.bind(Tokens.Logger.id).toConstantValue(options.logger);
    this.container.bind(Tokens.AgentConfig.id).toConstantValue(options.agent);
    this.container.bind(Tokens.Lifecycle.id).toConstantValue(this.lifecycle);
    for (const { definition } of options.set.order) this.#register(definition);
  }

  /**
   * Builds every provided service in dependency order (so hooks they append land before their
   * plugin's own start hook), then starts everything in that order.
   */
  async start(): Promise<void> {
    for (const { definition } of this.#options.set.order) {
      const ctx = this.#contexts.get(definition.name)!;
      try {
        for (const t of definition.provides ?? []) this.#instantiate(definition, t);
      } catch (err) {
        throw new StartError(definition.name, err);
      }
      this.lifecycle.append({
        name: definition.name,
        start: definition.start ? () => definition.start!(ctx) : undefined,
        stop: definition.stop ? (signal) => definition.stop!(ctx, signal) : undefined,
      });
    }
    await this.lifecycle.start(this.#options.agent.shutdownTimeoutMs);
  }

  /** Stops everything in reverse within the agent's shutdown budget. */
  stop(): ReturnType<LifecycleRunner['stop']> {
    return this.lifecycle.stop(this.#options.agent.shutdownTimeoutMs);
  }

  /** Each plugin with its state, in start order. */
  status(): PluginStatus[] {
    const states = new Map(this.lifecycle.states().map((s) => [s.name, s]));
    return this.#options.set.order.map(({ definition: d, origin }) => {
      const s = states.get(d.name);
      return {
        name: d.name,
        version: d.version,
        origin,
        state: s?.state ?? 'pending',
        provides: (d.provides ?? []).map((t) => t.name),
        requires: (d.requires ?? []).map((t) => t.name),
        ...(s?.error ? { error: s.error } : {}),
      };
    });
  }

  /** A resolver over the whole container, for the agent's own components. */
  resolver(): Resolver {
    return this.#resolverFor(undefined);
  }

  #register(definition: AnyPluginDefinition): void {
    const ctx: PluginContext<unknown> = {
      config: this.#options.sections.get(definition.name),
      agent: this.#options.agent,
      logger: this.#options.logger.child({ subsys: definition.name }),
      resolver: this.#resolverFor(definition),
    };
    this.#contexts.set(definition.name, ctx);
    const bind: Binder = <T>(token: Token<T>): BindTo<T> => {
      if (!(definition.provides ?? []).some((t) => t.id === token.id)) {
        throw new Error(`plugin ${definition.name} binds ${token.name} but does not list it in provides`);
      }
      const used = (this.#options.set.providers.get(token.id) ?? []).includes(definition);
      const to = (build: (r: Resolver) => T) => {
        // A default whose token was taken over by another plugin keeps quiet.
        if (!used) return;
        this.container.bind<T>(token.id).toDynamicValue(() => build(ctx.resolver)).inSingletonScope();
      };
      return { toConstant: (value: T) => to(() => value), toFactory: (factory: (r: Resolver) => T) => to(factory) };
    };
    definition.register(bind, ctx);
    for (const t of definition.provides ?? []) {
      const used = (this.#options.set.providers.get(t.id) ?? []).includes(definition);
      if (used && !this.container.isBound(t.id)) {
        throw new Error(`plugin ${definition.name} lists ${t.name} in provides but did not bind it in register`);
      }
    }
  }

  #instantiate(definition: AnyPluginDefinition, token: AnyToken): void {
    if (!(this.#options.set.providers.get(token.id) ?? []).includes(definition)) return;
    if (token.multiple) this.container.getAll(token.id);
    else this.container.get(token.id);
  }

  #resolverFor(definition: AnyPluginDefinition | undefined): Resolver {
    const declared = definition
      ? new Set([
          ...[Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle].map((t) => t.id),
          ...[...(definition.requires ?? []), ...(definition.optional ?? []), ...(definition.provides ?? [])].map((t) => t.id),
        ])
      : undefined;
    const check = (token: AnyToken) => {
      if (declared && !declared.has(token.id)) {
        throw new Error(`plugin ${definition!.name} resolves ${token.name} without declaring it in requires or optional`);
      }
    };
    return {
      get: <T>(token: Token<T>): T => {
        check(token);
        if (!this.container.isBound(token.id)) throw new Error(`nothing provides ${token.name}`);
        return this.container.get<T>(token.id);
      },
      getAll: <T>(token: Token<T>): T[] => {
        check(token);
        return this.container.isBound(token.id) ? this.container.getAll<T>(token.id) : [];
      },
      getOptional: <T>(token: Token<T>): T | undefined => {
        check(token);
        return this.container.isBound(token.id) ? this.container.get<T>(token.id) : undefined;
      },
    };
  }
}
