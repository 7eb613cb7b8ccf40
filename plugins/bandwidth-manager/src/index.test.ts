import { CORE_API_VERSION, composeConfigSchema, definePlugin, parseConfig, pluginConfigKey, resolvePluginSet, Tokens, z, type KubeObject } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import plugin, { parseBandwidth, parseQuantity, podBandwidth, type BandwidthConfig } from './index.js';

function section(document: Record<string, unknown>): BandwidthConfig {
  const schema = composeConfigSchema(z.object({}), [plugin]);
  return parseConfig(schema, { plugins: [plugin.name], ...document }).bandwidth as BandwidthConfig;
}

const pod = (annotations: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', annotations } });

describe('@cilia/plugin-bandwidth-manager', () => {
  it('needs the Pods and the endpoints, and fills the shaping slots of to-netdev (EDT) and to-container (ingress)', () => {
    expect(pluginConfigKey(plugin)).toBe('bandwidth');
    expect(plugin.requires).toEqual([Tokens.ResourceSource, Tokens.EndpointManager]);
    expect(plugin.bpf?.map((o) => [o.name, o.programs])).toEqual([
      ['bandwidth_egress', { cil_bandwidth_egress: { attach: 'to-netdev', slot: 'shaping' } }],
      ['bandwidth_ingress', { cil_bandwidth_ingress: { attach: 'to-container', slot: 'shaping' } }],
    ]);
    const base = definePlugin({ name: 'base', version: '1', apiVersion: '^1', provides: [Tokens.ResourceSource, Tokens.EndpointManager, Tokens.Datapath], register() {} });
    const set = resolvePluginSet([{ definition: base, origin: 'default' }, { definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.order.map((c) => c.definition.name)).toEqual(['base', plugin.name]);
  });

  it('defaults to auto with a 2 s horizon, and refuses bad values naming the key', () => {
    expect(section({})).toEqual({ enabled: 'auto', devices: [], horizonMs: 2000, ingressBurstMs: 300, ingressMinBurstBytes: 262144, bbr: false });
    expect(section({ bandwidth: { enabled: true, bbr: true } })).toMatchObject({ enabled: true, bbr: true });
    expect(() => section({ bandwidth: { enabled: 'yes' } })).toThrow(/bandwidth\.enabled/);
    expect(() => section({ bandwidth: { horizonMs: 0 } })).toThrow(/bandwidth\.horizonMs/);
    expect(() => section({ bandwidth: { devices: ['a b'] } })).toThrow(/bandwidth\.devices\[0\]/);
    expect(() => section({ bandwidth: { rate: 1 } })).toThrow(/bandwidth\.rate: unknown key/);
  });

  it('reads Kubernetes quantities: decimal and binary suffixes, exponents, fractions', () => {
    expect(parseQuantity('10M')).toBe(10e6);
    expect(parseQuantity('1.5G')).toBe(1.5e9);
    expect(parseQuantity('500k')).toBe(500e3);
    expect(parseQuantity('1Mi')).toBe(1048576);
    expect(parseQuantity('2e6')).toBe(2e6);
    expect(parseQuantity('1E3')).toBe(1000);
    expect(parseQuantity('1E')).toBe(1e18);
    expect(parseQuantity('.5G')).toBe(5e8);
    expect(parseQuantity('100')).toBe(100);
    for (const bad of ['', '10X', '10 M', 'M', '1.2.3', '10mb', '1e']) expect(parseQuantity(bad), bad).toBeUndefined();
  });

  it('takes bandwidths between 1k and 1P bits per second, as Kubernetes does', () => {
    expect(parseBandwidth('10M')).toEqual({ bitsPerSecond: 10e6 });
    expect(parseBandwidth('999')).toEqual({ error: '"999" is below 1k (1 kbit/s)' });
    expect(parseBandwidth('2P')).toEqual({ error: '"2P" is above 1P (1 Pbit/s)' });
    expect(parseBandwidth('-10M')).toMatchObject({ error: expect.stringMatching(/below 1k/) });
  });

  it("a Pod's annotations give each direction a rate, or the field path and reason it was refused", () => {
    expect(podBandwidth(pod({}))).toEqual({});
    expect(podBandwidth(pod({ 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '1G' }))).toEqual({
      egress: { bitsPerSecond: 10e6, annotation: '10M' },
      ingress: { bitsPerSecond: 1e9, annotation: '1G' },
    });
    expect(podBandwidth(pod({ 'kubernetes.io/egress-bandwidth': 'fast' }))).toEqual({
      egress: { error: '"fast" is not a Kubernetes quantity (e.g. 10M, 1G, 500k)', path: 'metadata.annotations["kubernetes.io/egress-bandwidth"]' },
    });
  });
});
