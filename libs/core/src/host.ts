import { Container } from 'inversify';
import { LifecycleRunner, StartError } from './lifecycle.js';
import { bpfObjectName, type AnyPluginDefinition, type BindTo, type Binder, type PluginBpf, type PluginContext, type PluginHooks, type Resolver } from './plugin.js';
import type { ResolvedPluginSet } from './resolve.js';
import type { AgentConfig } from './services/config.js';
import type { Datapath, LoadedBpfObject, SlotAssignment } from './services/datapath.js';
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
  /** The datapath slots its declared objects fill, in the order they are filled. */
  readonly slots?: ReadonlyArray<Omit<SlotAssignment, 'owner'>>;
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
  readonly #hooks = new Map<string, PluginHooks>();
  readonly #objects = new Map<string, Map<string, LoadedBpfObject>>();
  /** Declared objects a plugin's `enabled` left out at its last start. */
  readonly #skipped = new Map<string, ReadonlySet<string>>();
  #released: SlotAssignment[] = [];

  constructor(options: PluginHostOptions) {
    this.#options = options;
    this.container.bind(Tokens.Logger.id).toConstantValue(options.logger);
    this.container.bind(Tokens.AgentConfig.id).toConstantValue(options.agent);
    this.container.bind(Tokens.Lifecycle.id).toConstantValue(this.lifecycle);
    for (const { definition } of options.set.order) this.#register(definition);
  }

  /**
   * Builds every provided service in dependency order (so hooks they append land before their
   * plugin's own start hook), clears the slots of plugins that left the config, then starts
   * everything in that order: each plugin's objects installed, then the hooks its `register`
   * returned, then its own `start`.
   */
  async start(): Promise<void> {
    for (const { definition } of this.#options.set.order) {
      try {
        for (const t of definition.provides ?? []) this.#instantiate(definition, t);
      } catch (err) {
        throw new StartError(definition.name, err);
      }
      this.lifecycle.append({
        name: definition.name,
        start: () => this.#startPlugin(definition),
        stop: (signal) => this.#stopPlugin(definition, signal),
      });
    }
    const datapath = this.#datapath();
    if (datapath) {
      try {
        this.#released = await datapath.releaseSlots(this.#options.set.order.map((c) => c.definition.name));
      } catch (err) {
        throw new StartError('datapath slots of removed plugins', err);
      }
      for (const r of this.#released) {
        this.#options.logger.info({ slot: `${r.attach}/${r.slot}`, owner: r.owner, program: r.program }, 'slot cleared: its plugin is no longer configured');
      }
    }
    await this.lifecycle.start(this.#options.agent.shutdownTimeoutMs);
  }

  /** Slots cleared at start because the plugin filling them left the config. */
  get releasedSlots(): readonly SlotAssignment[] {
    return this.#released;
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
        ...(d.bpf?.length ? { slots: declaredSlots(d, this.#skipped.get(d.name)) } : {}),
        ...(s?.error ? { error: s.error } : {}),
      };
    });
  }

  /** A resolver over the whole container, for the agent's own components. */
  resolver(): Resolver {
    return this.#resolverFor(undefined);
  }

  async #startPlugin(definition: AnyPluginDefinition): Promise<void> {
    const ctx = this.#contexts.get(definition.name)!;
    if (definition.bpf?.length) await this.#install(definition, ctx);
    try {
      await this.#hooks.get(definition.name)?.start?.();
      await definition.start?.(ctx);
    } catch (err) {
      // A plugin that failed to start is not stopped: let go of its objects' handles here.
      if (this.#objects.delete(definition.name)) this.#datapath()?.closeObjects(definition.name);
      throw err;
    }
  }

  async #stopPlugin(definition: AnyPluginDefinition, signal: AbortSignal): Promise<void> {
    const ctx = this.#contexts.get(definition.name)!;
    try {
      await definition.stop?.(ctx, signal);
    } finally {
      try {
        await this.#hooks.get(definition.name)?.stop?.(signal);
      } finally {
        // Handles only: the programs stay in their slots, forwarding while the agent is away.
        if (this.#objects.delete(definition.name)) this.#datapath()?.closeObjects(definition.name);
      }
    }
  }

  /** Computes each object's constants, then has the datapath load them all and fill their slots. */
  async #install(definition: AnyPluginDefinition, ctx: PluginContext<unknown>): Promise<void> {
    const datapath = this.#datapath();
    if (!datapath) throw new Error(`declares BPF objects but nothing provides ${Tokens.Datapath.name}`);
    const objects = [];
    const skipped = new Set<string>();
    for (const spec of definition.bpf ?? []) {
      if (spec.enabled && !(await spec.enabled(ctx))) {
        skipped.add(bpfObjectName(spec));
        continue;
      }
      let constants;
      try {
        constants = (await spec.constants?.(ctx)) ?? {};
      } catch (err) {
        throw new Error(`bpf object ${bpfObjectName(spec)}: computing its constants failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      objects.push({ spec: spec as never, constants });
    }
    const loaded = await datapath.installObjects(definition.name, objects);
    this.#objects.set(definition.name, new Map(loaded.map((o) => [o.name, o])));
    this.#skipped.set(definition.name, skipped);
  }

  #datapath(): Datapath | undefined {
    return this.container.isBound(Tokens.Datapath.id) ? this.container.get<Datapath>(Tokens.Datapath.id) : undefined;
  }

  #bpfOf(definition: AnyPluginDefinition): PluginBpf {
    return {
      object: (name?: string) => {
        const declared = (definition.bpf ?? []).map(bpfObjectName);
        const wanted = name ?? (declared.length === 1 ? declared[0] : undefined);
        if (wanted === undefined) throw new Error(`plugin ${definition.name}: name the object (one of ${declared.join(', ') || 'none declared'})`);
        if (!declared.includes(wanted)) throw new Error(`plugin ${definition.name} declares no BPF object named ${wanted} (declared: ${declared.join(', ') || 'none'})`);
        const loaded = this.#objects.get(definition.name)?.get(wanted);
        if (!loaded) throw new Error(`plugin ${definition.name}: BPF object ${wanted} is not installed (objects are installed just before start, until after stop)`);
        return loaded;
      },
    };
  }

  #register(definition: AnyPluginDefinition): void {
    const ctx: PluginContext<unknown> = {
      config: this.#options.sections.get(definition.name),
      agent: this.#options.agent,
      logger: this.#options.logger.child({ subsys: definition.name }),
      resolver: this.#resolverFor(definition),
      bpf: this.#bpfOf(definition),
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
    const hooks = definition.register(bind, ctx);
    if (hooks) this.#hooks.set(definition.name, hooks);
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

function declaredSlots(definition: AnyPluginDefinition, skipped: ReadonlySet<string> = new Set()): Array<Omit<SlotAssignment, 'owner'>> {
  return (definition.bpf ?? []).filter((spec) => !skipped.has(bpfObjectName(spec))).flatMap((spec) =>
    Object.entries(spec.programs ?? {}).map(([program, where]) => ({ attach: where.attach, slot: where.slot, object: bpfObjectName(spec), program })),
  );
}
