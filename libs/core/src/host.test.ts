import { describe, expect, it } from 'vitest';
import { PluginHost } from './host.js';
import { definePlugin, type AnyPluginDefinition } from './plugin.js';
import { resolvePluginSet } from './resolve.js';
import type { AgentConfig } from './services/config.js';
import type { Datapath, LoadedBpfObject, ObjectInstall, SlotAssignment } from './services/datapath.js';
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

  it('runs the hooks register returned, closing over what it built, after the objects and before start', async () => {
    const events: string[] = [];
    const stateful = definePlugin({
      name: 'stateful',
      version: '1',
      apiVersion: '^1',
      provides: [Counter],
      register(bind) {
        let n = 0;
        bind(Counter).toFactory(() => ({ next: () => ++n }));
        return { start: () => void events.push(`start at ${n}`), stop: () => void events.push(`stop at ${n}`) };
      },
      start: ({ resolver }) => void events.push(`definition start ${resolver.get(Counter).next()}`),
      stop: () => void events.push('definition stop'),
    });
    const h = host([stateful]);
    await h.start();
    await h.stop();
    expect(events).toEqual(['start at 0', 'definition start 1', 'definition stop', 'stop at 1']);
  });
});

/** A datapath that records what the host asks of it (the real one is tested in @cilia/datapath). */
class RecordingDatapath implements Datapath {
  readonly pinRoot = '/sys/fs/bpf/test';
  readonly calls: string[] = [];
  installs: Array<{ owner: string; objects: readonly ObjectInstall[] }> = [];
  features = () => Promise.reject(new Error('not used'));
  async installObjects(owner: string, objects: readonly ObjectInstall[]): Promise<LoadedBpfObject[]> {
    this.calls.push(`install ${owner}`);
    this.installs.push({ owner, objects });
    return objects.map((o) => ({ name: o.spec.name ?? 'obj', file: String(o.spec.object), programId: () => 7, attachTc() {}, map: () => ({}) as never }));
  }
  async releaseSlots(owners: readonly string[]): Promise<SlotAssignment[]> {
    this.calls.push(`release all but ${owners.join(',')}`);
    return [{ attach: 'from-container', slot: 'forward', owner: 'gone', object: 'g', program: 'p' }];
  }
  slots = () => [];
  clearSlot = () => Promise.resolve();
  closeObjects(owner: string): void {
    this.calls.push(`close ${owner}`);
  }
}

describe('PluginHost with BPF objects', () => {
  const Mark = defineToken<number>('host-test.Mark');
  const datapathPlugin = (dp: Datapath) =>
    definePlugin({ name: 'dp', version: '1', apiVersion: '^1', provides: [Tokens.Datapath], register: (bind) => bind(Tokens.Datapath).toConstant(dp) });

  it('installs declared objects with their constants just before start, hands them to the plugin, and closes them after stop', async () => {
    const dp = new RecordingDatapath();
    const seen: string[] = [];
    const shaper = definePlugin<{ rate: number }>({
      name: 'shaper',
      version: '1',
      apiVersion: '^1',
      provides: [Mark],
      bpf: [{ name: 'edt', object: '/plugins/edt.o', programs: { edt: { attach: 'to-netdev', slot: 'shaping' } }, constants: async ({ config, resolver }) => ({ RATE: config.rate, MARK: resolver.get(Mark) }) }],
      register: (bind) => bind(Mark).toConstant(9),
      start: ({ bpf }) => void seen.push(`${bpf.object().name} ${bpf.object('edt').programId('edt')}`),
    });
    const set = resolvePluginSet(
      [{ definition: datapathPlugin(dp), origin: 'default' }, { definition: shaper, origin: 'configured' }],
      { coreVersion: '1.1.0', hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle] },
    );
    const h = new PluginHost({ set, agent, logger: silent, sections: new Map([['shaper', { rate: 100 }]]) });
    await h.start();
    expect(dp.calls).toEqual(['release all but dp,shaper', 'install shaper']);
    expect(dp.installs[0]!.objects.map((o) => o.constants)).toEqual([{ RATE: 100, MARK: 9 }]);
    expect(seen).toEqual(['edt 7']);
    expect(h.releasedSlots.map((r) => r.owner)).toEqual(['gone']);
    expect(h.status().find((p) => p.name === 'shaper')?.slots).toEqual([{ attach: 'to-netdev', slot: 'shaping', object: 'edt', program: 'edt' }]);
    await h.stop();
    expect(dp.calls.at(-1)).toBe('close shaper');
  });

  it('fails the plugin start, naming the object, when its constants cannot be computed', async () => {
    const dp = new RecordingDatapath();
    const broken = definePlugin({
      name: 'broken',
      version: '1',
      apiVersion: '^1',
      bpf: [{ object: '/plugins/tunnel.o', constants: () => Promise.reject(new Error('no device')) }],
      register() {},
    });
    const set = resolvePluginSet(
      [{ definition: datapathPlugin(dp), origin: 'default' }, { definition: broken, origin: 'configured' }],
      { coreVersion: '1.1.0', hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle] },
    );
    const h = new PluginHost({ set, agent, logger: silent, sections: new Map() });
    await expect(h.start()).rejects.toThrow('broken failed to start: bpf object tunnel: computing its constants failed: no device');
    expect(dp.calls).not.toContain('install broken');
  });

  it('leaves out an object whose enabled says no (its slots not shown), and a refusal there installs nothing', async () => {
    const dp = new RecordingDatapath();
    const both = (egress: () => boolean) =>
      definePlugin({
        name: 'bw',
        version: '1',
        apiVersion: '^1',
        bpf: [
          { name: 'egress', object: '/plugins/e.o', programs: { e: { attach: 'to-netdev', slot: 'shaping' } }, enabled: egress },
          { name: 'ingress', object: '/plugins/i.o', programs: { i: { attach: 'to-container', slot: 'shaping' } }, enabled: async () => true },
        ],
        register() {},
      });
    const hostOf = (plugin: ReturnType<typeof both>) =>
      new PluginHost({
        set: resolvePluginSet([{ definition: datapathPlugin(dp), origin: 'default' }, { definition: plugin, origin: 'configured' }], {
          coreVersion: '1.2.0',
          hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle],
        }),
        agent,
        logger: silent,
        sections: new Map(),
      });
    const h = hostOf(both(() => false));
    await h.start();
    expect(dp.installs.map((i) => i.objects.map((o) => o.spec.name))).toEqual([['ingress']]);
    expect(h.status().find((p) => p.name === 'bw')?.slots).toEqual([{ attach: 'to-container', slot: 'shaping', object: 'ingress', program: 'i' }]);
    await h.stop();
    const refusing = hostOf(
      both(() => {
        throw new Error('bw.enabled: the kernel lacks it');
      }),
    );
    await expect(refusing.start()).rejects.toThrow('bw failed to start: bw.enabled: the kernel lacks it');
    expect(dp.installs).toHaveLength(1);
  });
});
