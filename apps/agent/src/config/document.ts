import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@cilia/core';
import { LineCounter, parseDocument } from 'yaml';

/** A config file with its presets applied, not yet validated. */
export interface ConfigDocument {
  /** The merged document: presets first, the file itself last. */
  readonly document: Record<string, unknown>;
  /** Every file read, innermost preset first, the config file last. */
  readonly sources: readonly string[];
  /** Absolute path of the config file itself. */
  readonly file: string;
}

/** Where built-in presets live (`extends: standalone` → `<dir>/standalone.yaml`). */
export function presetDirectory(): string {
  // From src/config/ in tests, from dist/ when built: both sit one level below the package.
  return fileURLToPath(new URL(import.meta.url.includes('/src/') ? '../../presets/' : '../presets/', import.meta.url));
}

/** Reads `file`, follows `extends:` (presets by name, paths, or npm package files) and merges. */
export function loadConfigDocument(file: string): ConfigDocument {
  const absolute = resolve(file);
  const sources: string[] = [];
  const document = load(absolute, sources, []);
  return { document, sources, file: absolute };
}

function load(file: string, sources: string[], chain: readonly string[]): Record<string, unknown> {
  if (chain.includes(file)) {
    throw new ConfigError([{ path: 'extends', reason: `cycle: ${[...chain, file].join(' → ')}` }], file);
  }
  const own = readYamlMapping(file);
  const parents = own.extends === undefined ? [] : Array.isArray(own.extends) ? own.extends : [own.extends];
  let merged: Record<string, unknown> = {};
  parents.forEach((ref, i) => {
    if (typeof ref !== 'string' || ref === '') {
      throw new ConfigError([{ path: Array.isArray(own.extends) ? `extends[${i}]` : 'extends', reason: 'expected a preset name or file path' }], file);
    }
    merged = merge(merged, load(resolvePreset(ref, file), sources, [...chain, file]));
  });
  const { extends: _ignored, ...rest } = own;
  sources.push(file);
  return merge(merged, rest);
}

/** `standalone` → built-in preset; `./x.yaml` or `/x.yaml` → a file; `pkg/x.yaml` → from node_modules. */
function resolvePreset(ref: string, from: string): string {
  if (/^[a-z0-9][a-z0-9-]*$/.test(ref)) {
    const builtin = resolve(presetDirectory(), `${ref}.yaml`);
    try {
      readFileSync(builtin);
      return builtin;
    } catch {
      throw new ConfigError([{ path: 'extends', reason: `no built-in preset named ${JSON.stringify(ref)}` }], from);
    }
  }
  if (ref.startsWith('.') || isAbsolute(ref)) return resolve(dirname(from), ref);
  try {
    return createRequire(from).resolve(ref);
  } catch {
    throw new ConfigError([{ path: 'extends', reason: `cannot resolve ${JSON.stringify(ref)} from ${dirname(from)}` }], from);
  }
}

function readYamlMapping(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', reason: `cannot read: ${(err as Error).message}` }], file);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const at = lines.linePos(e.pos[0]);
        return { path: `line ${at.line}, column ${at.col}`, reason: e.message.split('\n')[0]! };
      }),
      file,
    );
  }
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError([{ path: '', reason: 'expected a mapping at the top level' }], file);
  }
  return value as Record<string, unknown>;
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: mappings merge key by key, `plugins` lists concatenate (first mention wins), anything else is replaced. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>, path: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    if (path.length === 0 && key === 'plugins' && Array.isArray(prev) && Array.isArray(value)) {
      out[key] = [...new Set([...prev, ...value])];
    } else if (isMapping(prev) && isMapping(value)) {
      out[key] = merge(prev, value, [...path, key]);
    } else {
      out[key] = value;
    }
  }
  return out;
}
