import { z } from 'zod';

/** What a secret value is shown as wherever the config leaves the agent (API, CLI, logs, bundles). */
export const REDACTED = '[redacted]';

/**
 * Marks a config field as secret (a password, a token set inline): `/v1/config`, `cilia config
 * view`, the logs and debug bundles show {@link REDACTED} instead of its value. The mark is zod
 * metadata, so it survives `.optional()`, `.default()` and `.describe()` around it.
 */
export function secret<T extends z.ZodType>(schema: T): T {
  return schema.meta({ secret: true }) as T;
}

interface JsonSchema {
  secret?: boolean;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
}

/** A path into a config value: object keys, `*` for any array element or record value. */
export type SecretPath = readonly string[];

/** The paths of every field of `schema` marked {@link secret}. */
export function secretPaths(schema: z.ZodType): SecretPath[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', cycles: 'ref' }) as JsonSchema;
  const out: SecretPath[] = [];
  const walk = (s: JsonSchema | boolean | undefined, path: string[]): void => {
    if (!s || s === true) return;
    if (s.secret) {
      out.push(path);
      return;
    }
    for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, [...path, k]);
    walk(s.additionalProperties, [...path, '*']);
    walk(s.items, [...path, '*']);
    for (const alt of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(alt, path);
  };
  walk(json, []);
  return dedupe(out);
}

/** A copy of `value` with every present field at `paths` replaced by {@link REDACTED}. */
export function redactSecrets<T>(value: T, paths: readonly SecretPath[]): T {
  let out: unknown = value;
  for (const path of paths) out = redactAt(out, path);
  return out as T;
}

function redactAt(value: unknown, path: SecretPath): unknown {
  if (path.length === 0) return value === undefined ? value : REDACTED;
  if (value === null || typeof value !== 'object') return value;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return head === '*' ? value.map((v) => redactAt(v, rest)) : value;
  const record = value as Record<string, unknown>;
  const keys = head === '*' ? Object.keys(record) : Object.hasOwn(record, head!) ? [head!] : [];
  if (keys.length === 0) return value;
  const copy = { ...record };
  for (const k of keys) copy[k] = redactAt(record[k], rest);
  return copy;
}

function dedupe(paths: SecretPath[]): SecretPath[] {
  const seen = new Set<string>();
  return paths.filter((p) => {
    const key = p.join('\0');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
