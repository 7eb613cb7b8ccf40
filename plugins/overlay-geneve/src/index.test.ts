import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CORE_API_VERSION, definePlugin, ConfigError, composeConfigSchema, parseConfig, pluginConfigKey, resolvePluginSet, Tokens, z } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import plugin, { GENEVE_OBJECT, GeneveEncapsulation, type GeneveConfig } from './index.js';
import { ipv4HostOrder } from './address.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const EM_BPF = 247;

function section(document: Record<string, unknown>): GeneveConfig {
  const schema = composeConfigSchema(z.object({}), [plugin]);
  return parseConfig(schema, { plugins: [plugin.name], ...document })['overlay-geneve'] as GeneveConfig;
}

describe('@cilia/plugin-overlay-geneve', () => {
  it('provides the Encapsulation (mode geneve, 50 bytes) and needs only this node\'s addresses (the datapath may ask it for the overhead)', () => {
    expect(plugin.name).toBe('@cilia/plugin-overlay-geneve');
    expect(pluginConfigKey(plugin)).toBe('overlay-geneve');
    expect(plugin.requires).toEqual([Tokens.LocalNode]);
    const local = definePlugin({ name: 'local-node', version: '1', apiVersion: '^1', provides: [Tokens.LocalNode, Tokens.Datapath], register() {} });
    const set = resolvePluginSet([{ definition: local, origin: 'default' }, { definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.providers.get(Tokens.Encapsulation.id)).toEqual([plugin]);
    const encapsulation = new GeneveEncapsulation({ config: section({}), logger: {} as never, object: () => undefined as never });
    expect([encapsulation.mode, encapsulation.overhead]).toEqual(['geneve', 50]);
  });

  it('defaults to port 6081 on the "auto" device, and refuses bad values naming the key', () => {
    expect(section({})).toEqual({ port: 6081, device: 'auto', hostDevice: 'cilia_geneve' });
    expect(section({ 'overlay-geneve': { port: 7000, device: 'eth1', hostDevice: 'gnv0' } })).toEqual({ port: 7000, device: 'eth1', hostDevice: 'gnv0' });
    expect(() => section({ 'overlay-geneve': { hostDevice: 'a/b' } })).toThrow(/overlay-geneve\.hostDevice/);
    expect(() => section({ 'overlay-geneve': { port: 0 } })).toThrow(ConfigError);
    expect(() => section({ 'overlay-geneve': { port: 70000 } })).toThrow(/overlay-geneve\.port/);
    expect(() => section({ 'overlay-geneve': { device: 'a b' } })).toThrow(/overlay-geneve\.device/);
    expect(() => section({ 'overlay-geneve': { vni: 1 } })).toThrow(/overlay-geneve\.vni: unknown key/);
  });

  it('ships its BPF object with the forward slot program, the receive program and the host device program', () => {
    // The same command as the build-bpf target: writes dist/bpf/overlay-geneve.o.
    execFileSync('node', ['../../tools/bpf-build.mjs', '.'], { cwd: packageDir, stdio: 'pipe' });
    const elf = readFileSync(GENEVE_OBJECT);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(EM_BPF);
    // Receive first, forward last: the order the agent fills them in.
    expect(Object.entries(plugin.bpf?.[0]?.programs ?? {})).toEqual([
      ['cil_geneve_from_overlay', { attach: 'from-netdev', slot: 'pre' }],
      ['cil_geneve_to_overlay', { attach: 'from-container', slot: 'forward' }],
    ]);
    expect(elf.includes('cil_geneve_from_overlay')).toBe(true);
    expect(elf.includes('cil_geneve_from_host')).toBe(true);
  });

  it('hands addresses to the programs in host byte order', () => {
    expect(ipv4HostOrder('172.30.0.1')).toBe(0xac1e0001);
  });
});
