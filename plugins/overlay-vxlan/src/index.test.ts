import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfObject, ensureBpffs } from '@cilia/bpf';
import { CORE_API_VERSION, definePlugin, ConfigError, composeConfigSchema, parseConfig, pluginConfigKey, resolvePluginSet, Tokens, z } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import plugin, { VXLAN_OBJECT, vxlanDeviceMac, type VxlanConfig } from './index.js';
import { ipv4NetworkOrderU32 } from './address.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const EM_BPF = 247;

function section(document: Record<string, unknown>): VxlanConfig {
  const schema = composeConfigSchema(z.object({}), [plugin]);
  return parseConfig(schema, { plugins: [plugin.name], ...document })['overlay-vxlan'] as VxlanConfig;
}

describe('@cilia/plugin-overlay-vxlan', () => {
  it('provides the Encapsulation and needs only this node\'s addresses (the datapath may ask it for the overhead)', () => {
    expect(plugin.name).toBe('@cilia/plugin-overlay-vxlan');
    expect(pluginConfigKey(plugin)).toBe('overlay-vxlan');
    expect(plugin.requires).toEqual([Tokens.LocalNode]);
    const local = definePlugin({ name: 'local-node', version: '1', apiVersion: '^1', provides: [Tokens.LocalNode, Tokens.Datapath], register() {} });
    const set = resolvePluginSet([{ definition: local, origin: 'default' }, { definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.providers.get(Tokens.Encapsulation.id)).toEqual([plugin]);
  });

  it('defaults to port 8472 and device cilia_vxlan, and refuses bad values naming the key', () => {
    expect(section({})).toEqual({ port: 8472, device: 'cilia_vxlan' });
    expect(section({ 'overlay-vxlan': { port: 4789 } })).toEqual({ port: 4789, device: 'cilia_vxlan' });
    expect(() => section({ 'overlay-vxlan': { port: 0 } })).toThrow(ConfigError);
    expect(() => section({ 'overlay-vxlan': { port: 70000 } })).toThrow(/overlay-vxlan\.port/);
    expect(() => section({ 'overlay-vxlan': { device: 'a b' } })).toThrow(/overlay-vxlan\.device/);
    expect(() => section({ 'overlay-vxlan': { vni: 1 } })).toThrow(/overlay-vxlan\.vni: unknown key/);
  });

  it('ships its BPF object with the forward slot program and the device programs, and it loads', () => {
    execFileSync('node', ['../../tools/bpf-build.mjs', '.'], { cwd: packageDir, stdio: 'pipe' });
    const elf = readFileSync(VXLAN_OBJECT);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(EM_BPF);
    // Receive first, forward last: the order the agent fills them in.
    expect(Object.entries(plugin.bpf?.[0]?.programs ?? {})).toEqual([
      ['cil_vxlan_from_underlay', { attach: 'from-netdev', slot: 'pre' }],
      ['cil_vxlan_forward', { attach: 'from-container', slot: 'forward' }],
    ]);
    // The verifier accepts every program with the constants set (maps pinned in a root of its own).
    const pinRoot = `/sys/fs/bpf/cilia-test-vxlan-${process.pid}`;
    ensureBpffs(pinRoot);
    const obj = BpfObject.open(fileURLToPath(VXLAN_OBJECT), { pinRoot });
    try {
      obj.setConstant('VXLAN_IFINDEX', 1);
      obj.setConstant('LOCAL_TUNNEL_ENDPOINT', ipv4NetworkOrderU32('172.30.0.1'));
      obj.load();
      expect(['cil_vxlan_forward', 'cil_from_overlay', 'cil_to_overlay', 'cil_vxlan_from_underlay'].map((p) => obj.program(p).id > 0)).toEqual([true, true, true, true]);
    } finally {
      obj.close();
      rmSync(pinRoot, { recursive: true, force: true });
    }
  });

  it('encodes constants the way the programs read them', () => {
    expect(ipv4NetworkOrderU32('172.30.0.1')).toBe(0x01001eac);
    expect(vxlanDeviceMac('172.30.0.10')).toBe('02:c1:ac:1e:00:0a');
  });
});
