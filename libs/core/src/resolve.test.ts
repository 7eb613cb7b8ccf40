import { describe, expect, it } from 'vitest';
import { definePlugin, type AnyPluginDefinition } from './plugin.js';
import { PluginSetError, resolvePluginSet, type PluginCandidate } from './resolve.js';
import { defineToken } from './token.js';
import { Tokens } from './tokens.js';

const A = defineToken<string>('test.A');
const B = defineToken<string>('test.B');
const Ext = defineToken<string>('test.Ext', { multiple: true });

const plugin = (name: string, extra: Partial<AnyPluginDefinition> = {}) =>
  definePlugin({ name, version: '1.0.0', apiVersion: '^1', register() {}, ...extra });
const configured = (definition: AnyPluginDefinition): PluginCandidate => ({ definition, origin: 'configured' });
const byDefault = (definition: AnyPluginDefinition): PluginCandidate => ({ definition, origin: 'default' });
const options = { coreVersion: '1.2.0', hostTokens: [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle] };

function problems(candidates: PluginCandidate[]): readonly string[] {
  try {
    resolvePluginSet(candidates, options);
  } catch (err) {
    expect(err).toBeInstanceOf(PluginSetError);
    return (err as PluginSetError).problems;
  }
  throw new Error('expected the set to be refused');
}

describe('resolvePluginSet', () => {
  it('orders providers before consumers, otherwise keeping the listed order', () => {
    const set = resolvePluginSet(
      [
        configured(plugin('c', { requires: [B] })),
        configured(plugin('b', { provides: [B], requires: [A] })),
        configured(plugin('x')),
        configured(plugin('a', { provides: [A] })),
      ],
      options,
    );
    expect(set.order.map((c) => c.definition.name)).toEqual(['x', 'a', 'b', 'c']);
    expect(set.dependsOn.get('c')).toEqual(['b']);
  });

  it('lets optional dependencies order the start when present, and ignores them when absent', () => {
    const set = resolvePluginSet([configured(plugin('user', { optional: [A, B] })), configured(plugin('a', { provides: [A] }))], options);
    expect(set.order.map((c) => c.definition.name)).toEqual(['a', 'user']);
  });

  it('lets several plugins provide a multiple token, and orders consumers after all of them', () => {
    const set = resolvePluginSet(
      [configured(plugin('proxy', { requires: [Ext] })), configured(plugin('http', { provides: [Ext] })), configured(plugin('kafka', { provides: [Ext] }))],
      options,
    );
    expect(set.order.map((c) => c.definition.name)).toEqual(['http', 'kafka', 'proxy']);
    expect(set.providers.get(Ext.id)?.map((p) => p.name)).toEqual(['http', 'kafka']);
  });

  it('replaces a default provider when a configured plugin declares replaces', () => {
    const set = resolvePluginSet(
      [byDefault(plugin('host-ipam', { provides: [A] })), configured(plugin('cloud-ipam', { provides: [A], replaces: [A] })), configured(plugin('user', { requires: [A] }))],
      options,
    );
    expect(set.order.map((c) => c.definition.name)).toEqual(['cloud-ipam', 'user']);
    expect(set.providers.get(A.id)?.map((p) => p.name)).toEqual(['cloud-ipam']);
  });

  it('keeps a default that provides other tokens too, without its replaced binding', () => {
    const set = resolvePluginSet(
      [byDefault(plugin('base', { provides: [A, B] })), configured(plugin('mine', { provides: [A], replaces: [A] }))],
      options,
    );
    expect(set.order.map((c) => c.definition.name)).toEqual(['base', 'mine']);
    expect(set.providers.get(A.id)?.map((p) => p.name)).toEqual(['mine']);
    expect(set.providers.get(B.id)?.map((p) => p.name)).toEqual(['base']);
  });

  it('refuses a second provider of a default without replaces, and says how to fix it', () => {
    const [p] = problems([byDefault(plugin('host-ipam', { provides: [A] })), configured(plugin('cloud-ipam', { provides: [A] }))]);
    expect(p).toContain('test.A has more than one provider: host-ipam and cloud-ipam');
    expect(p).toContain('list test.A in replaces');
  });

  it('refuses an apiVersion that does not admit the core version, and one that is no range', () => {
    const found = problems([configured(plugin('old', { apiVersion: '^0.9' })), configured(plugin('odd', { apiVersion: 'latest-please' }))]);
    expect(found).toEqual([
      'plugin old: apiVersion ^0.9 does not admit @cilia/core 1.2.0 (this agent\'s plugin API)',
      'plugin odd: apiVersion "latest-please" is not a semver range',
    ]);
  });

  it('refuses a missing provider, naming the plugin and the token', () => {
    expect(problems([configured(plugin('needy', { requires: [A] }))])).toEqual(['plugin needy requires test.A, which no plugin in the set provides']);
  });

  it('refuses a cycle, naming each link', () => {
    const found = problems([
      configured(plugin('p', { provides: [A], requires: [B] })),
      configured(plugin('q', { provides: [B], requires: [A] })),
    ]);
    expect(found).toEqual(['dependency cycle: p needs test.B from q, q needs test.A from p']);
  });

  it('refuses a plugin that provides a token the agent itself provides', () => {
    expect(problems([configured(plugin('loud', { provides: [Tokens.Logger] }))])).toEqual([
      'plugin loud provides cilia.Logger, which the agent itself provides',
    ]);
  });

  it('accepts host tokens as requirements without a plugin providing them', () => {
    const set = resolvePluginSet([configured(plugin('logs', { requires: [Tokens.Logger, Tokens.Lifecycle] }))], options);
    expect(set.order).toHaveLength(1);
  });

  it('refuses BPF objects with no datapath to install them, and two plugins filling one slot', () => {
    const obj = (program: string) => [{ object: '/x.o', programs: { [program]: { attach: 'from-container' as const, slot: 'forward' as const } } }];
    expect(problems([configured(plugin('tunnel', { bpf: obj('a') }))])).toEqual([
      'plugin tunnel declares BPF objects (bpf:), which need a provider of cilia.Datapath; none is in the set',
    ]);
    const datapath = plugin('dp', { provides: [Tokens.Datapath] });
    expect(problems([byDefault(datapath), configured(plugin('one', { bpf: obj('a') })), configured(plugin('two', { bpf: obj('b') }))])).toEqual([
      'plugins one and two both fill the from-container/forward slot (two: b); only one may',
    ]);
    expect(resolvePluginSet([byDefault(datapath), configured(plugin('one', { bpf: obj('a') }))], options).order).toHaveLength(2);
  });

  it('reports every problem at once', () => {
    expect(problems([configured(plugin('old', { apiVersion: '^2' })), configured(plugin('needy', { requires: [B] }))])).toHaveLength(2);
  });
});

describe('definePlugin', () => {
  it('refuses a malformed definition, naming the fields', () => {
    expect(() => definePlugin({ name: 'Bad Name', version: '', apiVersion: '', register: undefined as never })).toThrow(
      /name: must be an npm package name.*version: must be a non-empty string.*apiVersion.*register: must be a function/,
    );
    expect(() => definePlugin({ name: 'p', version: '1', apiVersion: '^1', register() {}, replaces: [A] })).toThrow(
      'replaces: test.A must also be listed in provides',
    );
    expect(() => definePlugin({ name: 'p', version: '1', apiVersion: '^1', register() {}, requires: ['cilia.Ipam' as never] })).toThrow(
      'requires: must be a list of tokens',
    );
  });

  it('refuses malformed BPF object declarations, naming the field', () => {
    const define = (bpf: unknown) => () => definePlugin({ name: 'p', version: '1', apiVersion: '^1', register() {}, bpf: bpf as never });
    expect(define([{ programs: {} }])).toThrow('bpf[0].object: must be a path or file URL of the .o');
    expect(define([{ object: '/a.o', programs: { p: { attach: 'xdp-netdev', slot: 'service' } } }])).toThrow('bpf[0].programs.p.attach: "xdp-netdev" has no slots');
    expect(define([{ object: '/a.o', programs: { p: { attach: 'to-container', slot: 'pre' } } }])).toThrow('bpf[0].programs.p.slot: "pre" is not a slot of to-container');
    expect(define([{ object: '/a.o', programs: { p: { attach: 'to-netdev', slot: 'shaping' }, q: { attach: 'to-netdev', slot: 'shaping' } } }])).toThrow(
      'bpf[0].programs.q: to-netdev/shaping is filled by p already',
    );
    expect(define([{ object: '/a.o' }, { object: new URL('file:///b/a.o') }])).toThrow('bpf[1]: another object is also named "a"; give one a name');
    expect(define([{ object: '/a.o', constants: 3 }])).toThrow('bpf[0].constants: must be a function');
    expect(define([{ object: '/a.o', programs: { p: { attach: 'from-netdev', slot: 'pre' } } }])).not.toThrow();
  });

  it('finds the same token again by name, as a second copy of core would', () => {
    expect(defineToken('test.A').id).toBe(A.id);
  });
});
