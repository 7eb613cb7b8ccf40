import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginSetError, type AnyPluginDefinition } from '@cilia/core';

/** A plugin module found and imported. */
export interface LoadedPlugin {
  /** As written in the config. */
  readonly specifier: string;
  /** The file that was imported. */
  readonly file: string;
  readonly definition: AnyPluginDefinition;
}

/**
 * Imports the plugins a config names. Each name goes through Node's module resolution from the
 * config file's directory first, then from the agent's own installation, so an npm-installed
 * third-party plugin loads exactly as a bundled one. Every failure is collected and reported
 * at once as a {@link PluginSetError}.
 */
export async function loadPlugins(specifiers: readonly string[], configFile: string): Promise<LoadedPlugin[]> {
  const problems: string[] = [];
  const loaded: LoadedPlugin[] = [];
  for (const specifier of specifiers) {
    const file = resolveSpecifier(specifier, configFile);
    if (!file) {
      problems.push(
        `plugin ${specifier} does not resolve from ${dirname(configFile)} or from the agent's installation (install it with npm next to the config, or check the name)`,
      );
      continue;
    }
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown; plugin?: unknown };
      const definition = (mod.default ?? mod.plugin) as AnyPluginDefinition | undefined;
      const problem = checkDefinition(specifier, file, definition);
      if (problem) problems.push(problem);
      else loaded.push({ specifier, file, definition: definition! });
    } catch (err) {
      problems.push(`plugin ${specifier} failed to load from ${file}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new PluginSetError(problems);
  return loaded;
}

function resolveSpecifier(specifier: string, configFile: string): string | undefined {
  for (const base of [configFile, import.meta.filename ?? new URL(import.meta.url).pathname]) {
    try {
      return createRequire(base).resolve(specifier);
    } catch {
      // try the next base
    }
  }
  return undefined;
}

function checkDefinition(specifier: string, file: string, d: AnyPluginDefinition | undefined): string | undefined {
  if (!d || typeof d !== 'object' || typeof d.register !== 'function' || typeof d.name !== 'string') {
    return `plugin ${specifier} (${file}) has no plugin definition as its default export (use definePlugin from @cilia/core)`;
  }
  const pkg = owningPackageName(file);
  if (!specifier.startsWith('.') && !specifier.startsWith('/') && pkg !== undefined && pkg !== d.name) {
    return `plugin ${specifier} defines itself as ${d.name}; a plugin's name must be its npm package name`;
  }
  return undefined;
}

function owningPackageName(file: string): string | undefined {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name;
    } catch {
      // keep walking up
    }
  }
  return undefined;
}
