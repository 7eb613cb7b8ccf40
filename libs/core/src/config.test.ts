import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { composeConfigSchema, ConfigError, parseConfig, strictDeep } from './config.js';
import { definePlugin, pluginConfigKey } from './plugin.js';
import { CORE_API_VERSION } from './version.js';

const agent = z.strictObject({ stateDir: z.string().default('/var/run/cilia') });
const overlay = definePlugin({
  name: '@cilia/plugin-overlay-vxlan',
  version: '1.0.0',
  apiVersion: '^1',
  config: z.object({ port: z.number().int().default(8472), tunnel: z.object({ mtu: z.number().default(1450) }).default({ mtu: 1450 }) }),
  register() {},
});

function problemsOf(doc: unknown) {
  try {
    parseConfig(composeConfigSchema(agent, [overlay]), doc, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a refusal');
}

describe('config composition', () => {
  it('applies every default when sections are absent', () => {
    expect(parseConfig(composeConfigSchema(agent, [overlay]), {})).toEqual({
      agent: { stateDir: '/var/run/cilia' },
      plugins: [],
      'overlay-vxlan': { port: 8472, tunnel: { mtu: 1450 } },
    });
  });

  it('refuses unknown keys at any depth, even in a plugin schema written with z.object', () => {
    expect(problemsOf({ 'overlay-vxlan': { tunnel: { mtu: 1400, colour: 'red' } }, nosuch: {} })).toEqual([
      { path: 'overlay-vxlan.tunnel.colour', reason: 'unknown key' },
      { path: 'nosuch', reason: 'unknown key' },
    ]);
  });

  it('names the path and the reason of a wrong type', () => {
    expect(problemsOf({ plugins: ['a', 3], 'overlay-vxlan': { port: 'x' } })).toEqual([
      { path: 'plugins[1]', reason: 'Invalid input: expected string, received number' },
      { path: 'overlay-vxlan.port', reason: 'Invalid input: expected number, received string' },
    ]);
  });

  it('derives section keys from package names', () => {
    expect(pluginConfigKey({ name: '@cilia/plugin-overlay-vxlan' })).toBe('overlay-vxlan');
    expect(pluginConfigKey({ name: 'cilia-plugin-hello' })).toBe('hello');
    expect(pluginConfigKey({ name: '@acme/thing', configKey: 'acme' })).toBe('acme');
  });

  it('refuses a plugin whose section would shadow a reserved key', () => {
    const bad = definePlugin({ name: 'cilia-plugin-agent', version: '1', apiVersion: '^1', register() {} });
    expect(() => composeConfigSchema(agent, [bad])).toThrow(/agent: plugin cilia-plugin-agent uses a reserved section name/);
  });

  it('leaves non-object schemas alone', () => {
    const s = z.string();
    expect(strictDeep(s)).toBe(s);
  });
});

describe('CORE_API_VERSION', () => {
  it('equals the package version, which is what plugins range over', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string; dependencies: Record<string, string> };
    expect(CORE_API_VERSION).toBe(pkg.version);
    // The kernel depends on no other workspace package.
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith('@cilia/'))).toEqual([]);
  });
});
