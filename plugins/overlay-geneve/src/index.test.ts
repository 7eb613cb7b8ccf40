import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CORE_API_VERSION, ConfigError, composeConfigSchema, parseConfig, pluginConfigKey, resolvePluginSet, z } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import plugin, { OverlayGeneveToken, type OverlayGeneveConfig } from './index.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const EM_BPF = 247;

function sections(document: Record<string, unknown>): OverlayGeneveConfig {
  const schema = composeConfigSchema(z.object({}), [plugin]);
  return parseConfig(schema, { plugins: [plugin.name], ...document })['overlay-geneve'] as OverlayGeneveConfig;
}

describe('@cilia/plugin-overlay-geneve', () => {
  it('is a plugin the agent accepts', () => {
    expect(plugin.name).toBe('@cilia/plugin-overlay-geneve');
    expect(pluginConfigKey(plugin)).toBe('overlay-geneve');
    const set = resolvePluginSet([{ definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.order.map((c) => c.definition.name)).toEqual(['@cilia/plugin-overlay-geneve']);
    expect(set.providers.get(OverlayGeneveToken.id)).toEqual([plugin]);
  });

  it('fills in config defaults', () => {
    expect(sections({})).toEqual({ greeting: 'hello from overlay-geneve', mark: 0 });
    expect(sections({ 'overlay-geneve': { mark: 7 } })).toEqual({ greeting: 'hello from overlay-geneve', mark: 7 });
  });

  it('refuses unknown keys and wrong types, naming the key path', () => {
    expect(() => sections({ 'overlay-geneve': { colour: 'blue' } })).toThrow(ConfigError);
    expect(() => sections({ 'overlay-geneve': { colour: 'blue' } })).toThrow(/overlay-geneve\.colour: unknown key/);
    expect(() => sections({ 'overlay-geneve': { mark: -1 } })).toThrow(/overlay-geneve\.mark: /);
  });

  it('ships the BPF object it declares, compiled for the bpf target', async () => {
    // The same command as the build-bpf target: writes dist/bpf/overlay-geneve.o.
    execFileSync('node', ['../../tools/bpf-build.mjs', '.'], { cwd: packageDir, stdio: 'pipe' });
    const declared = plugin.bpf?.[0]?.object;
    expect(declared).toBeInstanceOf(URL);
    const elf = readFileSync(declared as URL);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(EM_BPF);

    const lines: unknown[][] = [];
    const logger = { info: (...args: unknown[]) => lines.push(args) } as never;
    const config = sections({});
    await plugin.start?.({ config, logger, agent: {} as never, resolver: {} as never });
    expect(lines).toEqual([[{ object: fileURLToPath(declared as URL), mark: 0 }, 'hello from overlay-geneve']]);
  });
});
