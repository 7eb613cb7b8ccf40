import { z } from 'zod';
import { pluginConfigKey, type AnyPluginDefinition } from './plugin.js';

/** One refused config value: where it is and why. */
export interface ConfigProblem {
  /** Key path, e.g. `agent.apiSocket` or `plugins[2]`. */
  readonly path: string;
  readonly reason: string;
}

/** A refused configuration. The message names each key path and reason, one per line. */
export class ConfigError extends Error {
  constructor(
    readonly problems: readonly ConfigProblem[],
    readonly origin = 'config',
  ) {
    super(`invalid ${origin}:\n${problems.map((p) => `  - ${p.path || '(top level)'}: ${p.reason}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Renders a key path the way a person types it: `a.b[2].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Turns zod's issues into key paths and reasons; unknown keys get one problem each. */
export function configProblems(error: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...path, key]), reason: 'unknown key' });
    } else {
      out.push({ path: formatPath(path), reason: issue.message });
    }
  }
  return out;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/**
 * Returns `schema` with every object made strict, however deep, so that a plugin written with
 * `z.object` still has unknown keys refused. Other schemas are rebuilt only where they wrap one.
 */
export function strictDeep<T extends z.ZodType>(schema: T): T {
  const def = defOf(schema);
  const clone = (patch: Record<string, unknown>) => {
    const copy = (schema as unknown as { clone(d: unknown): T }).clone({ ...def, ...patch });
    // A clone from a new def drops the registry's metadata (description, the secret mark): keep it.
    const meta = z.globalRegistry.get(schema);
    if (meta) z.globalRegistry.add(copy, meta);
    return copy;
  };
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      const strictShape = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, strictDeep(v)]));
      const catchall = def.catchall as z.ZodType | undefined;
      return clone({ shape: strictShape, catchall: catchall ? strictDeep(catchall) : z.never() });
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return clone({ innerType: strictDeep(def.innerType as z.ZodType) });
    case 'array':
      return clone({ element: strictDeep(def.element as z.ZodType) });
    case 'record':
      return clone({ valueType: strictDeep(def.valueType as z.ZodType) });
    case 'union':
      return clone({ options: (def.options as z.ZodType[]).map(strictDeep) });
    case 'pipe':
      return clone({ in: strictDeep(def.in as z.ZodType) });
    default:
      return schema;
  }
}

/** The agent config's top-level keys that are not plugin sections. */
export const RESERVED_CONFIG_KEYS = ['extends', 'agent', 'plugins'] as const;

/**
 * Composes the whole agent config schema: `agent` (the agent's own section), `plugins` (the
 * plugin list) and one section per plugin under its config key, each defaulted when absent.
 * `extends` has been applied before validation, so it is not part of the schema.
 */
export function composeConfigSchema(
  agentSection: z.ZodType,
  plugins: readonly AnyPluginDefinition[],
): z.ZodType<{ agent: unknown; plugins: string[] } & Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {
    agent: strictDeep(agentSection).prefault({}),
    plugins: z.array(z.string().min(1)).default([]).describe('npm package names of the plugins to load, in addition to the defaults'),
  };
  for (const p of plugins) {
    const key = pluginConfigKey(p);
    if ((RESERVED_CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError([{ path: key, reason: `plugin ${p.name} uses a reserved section name` }]);
    }
    shape[key] = (p.config ? strictDeep(p.config) : z.strictObject({})).prefault({}).describe(`config of plugin ${p.name}`);
  }
  return z.strictObject(shape) as never;
}

/** Validates a document against a composed schema; throws {@link ConfigError} naming every bad key. */
export function parseConfig<T>(schema: z.ZodType<T>, document: unknown, origin = 'config'): T {
  const result = schema.safeParse(document ?? {});
  if (!result.success) throw new ConfigError(configProblems(result.error), origin);
  return result.data;
}
