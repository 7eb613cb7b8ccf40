import { describe, expect, it } from 'vitest';
import { PluginHost } from './host.js';
import { definePlugin, type AnyPluginDefinition } from './plugin.js';
import { resolvePluginSet } from './resolve.js';
import type { AgentConfig } from './services/config.js';
import type { Logger } from './services/logger.js';
import { defineToken } from './token.js';
import { Tokens } from './tokens.js';

const Counter = defineToken<{ next(): number }>('host-test.Counter');
const Other = defineToken<string>('host-test.Other');

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };
const agent = { nodeName: 'n', shutdownTimeoutMs: 1000 } as AgentConfig;

function host(plugins: AnyPluginDefinition[], defaults: AnyPluginDefinition[] = []) {
  const set = resolvePluginSet(
    [...defaults.map((definition) => ({ definition, origin: 'default' as const })), ...plugins.map((definition) => ({ definition, origin: 'configured' as const }))],
    { coreVersion: '1.0.0', hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle] },
  );
  return new PluginHost({ set, agent, logger: silent, sections: new Map() });
}

const counter = (name: string, start = 0, extra: Partial<AnyPluginDefinition> = {}) =>
  definePlugin({
    name,
    version: '1.0.0',
    apiVersion: '^1',
    provides: [Counter],
    register(bind) {
      let n = start;
      bind(Counter).toFactory(() => ({ next: () => ++n }));
    },
    ...extra,
  });

describe('PluginHost', () => {
  it('binds singletons built once, resolved through explicit tokens', async () => {
    const seen: number[] = [];
    const user = definePlugin({
      name: 'user',
      version: '1',
      apiVersion: '^1',
      requires: [Counter],
      register() {},
      start: ({ resolver }) => {
        seen.push(resolver.get(Counter).next(), resolver.get(Counter).next());
      },
    });
    const h = host([counter('counter'), user]);
    await h.start();
    expect(seen).toEqual([1, 2]);
    expect(h.status().map((s) => s.state)).toEqual(['started', 'started']);
  });

  it('uses the replacing plugin, not the default it replaced', async () => {
    const h = host([counter('mine', 100, { replaces: [Counter] })], [counter('default-counter')]);
    await h.start();
    expect(h.resolver().get(Counter).next()).toBe(101);
  });

  it('refuses a binding the plugin did not declare in provides', () => {
    const sneaky = definePlugin({ name: 'sneaky', version: '1', apiVersion: '^1', register: (bind) => bind(Other).toConstant('x') });
    expect(() => host([sneaky])).toThrow('plugin sneaky binds host-test.Other but does not list it in provides');
  });

  it('refuses a provided token left unbound', () => {
    const lazy = definePlugin({ name: 'lazy', version: '1', apiVersion: '^1', provides: [Other], register() {} });
    expect(() => host([lazy])).toThrow('plugin lazy lists host-test.Other in provides but did not bind it in register');
  });

  it('refuses to resolve a token the plugin did not declare', async () => {
    const nosy = definePlugin({
      name: 'nosy',
      version: '1',
      apiVersion: '^1',
      register() {},
      start: ({ resolver }) => void resolver.get(Counter),
    });
    await expect(host([counter('counter'), nosy]).start()).rejects.toThrow('plugin nosy resolves host-test.Counter without declaring it');
  });
});
