import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfObject, ensureBpffs } from '@cilia/bpf';
import { CORE_API_VERSION, composeConfigSchema, definePlugin, parseConfig, pluginConfigKey, resolvePluginSet, Tokens, z } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import plugin, { LB_OBJECT, SOCK_OBJECT, SOCK_PROGRAMS, type LbConfig } from './index.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const EM_BPF = 247;

function section(document: Record<string, unknown>): LbConfig {
  const schema = composeConfigSchema(z.object({}), [plugin]);
  return parseConfig(schema, { plugins: [plugin.name], ...document }).lb as LbConfig;
}

describe('@cilia/plugin-kube-proxy-replacement', () => {
  it('provides the ServiceManager from the resource source\'s Services, on this node\'s addresses', () => {
    expect(plugin.name).toBe('@cilia/plugin-kube-proxy-replacement');
    expect(pluginConfigKey(plugin)).toBe('lb');
    expect(plugin.requires).toEqual([Tokens.LocalNode, Tokens.ResourceSource]);
    const base = definePlugin({ name: 'base', version: '1', apiVersion: '^1', provides: [Tokens.LocalNode, Tokens.ResourceSource, Tokens.Datapath], register() {} });
    const set = resolvePluginSet([{ definition: base, origin: 'default' }, { definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.providers.get(Tokens.ServiceManager.id)).toEqual([plugin]);
  });

  it('has Cilium\'s defaults, and refuses bad values naming the key', () => {
    expect(section({})).toEqual({
      algorithm: 'random',
      maglev: { tableSize: 16381, seed: 0 },
      nodePort: { range: '30000-32767', addresses: [] },
      socketLB: { enabled: true, hostNamespaceOnly: false },
      serviceProxyName: '',
    });
    expect(section({ lb: { algorithm: 'maglev', maglev: { tableSize: 65521 } } })).toMatchObject({ algorithm: 'maglev', maglev: { tableSize: 65521, seed: 0 } });
    expect(() => section({ lb: { maglev: { tableSize: 16380 } } })).toThrow(/lb\.maglev\.tableSize: must be a prime/);
    expect(() => section({ lb: { algorithm: 'round-robin' } })).toThrow(/lb\.algorithm/);
    expect(() => section({ lb: { nodePort: { range: '32767-30000' } } })).toThrow(/lb\.nodePort\.range/);
    expect(() => section({ lb: { nodePort: { addresses: ['fd00::1'] } } })).toThrow(/lb\.nodePort\.addresses\.0|lb\.nodePort\.addresses\[0\]/);
    expect(() => section({ lb: { socketLB: { hostNamespace: true } } })).toThrow(/lb\.socketLB\.hostNamespace: unknown key/);
  });

  it('ships its BPF objects — the service slot programs, the socket hooks\' — and the verifier takes them', () => {
    execFileSync('node', ['../../tools/bpf-build.mjs', '.'], { cwd: packageDir, stdio: 'pipe' });
    const elf = readFileSync(LB_OBJECT);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(EM_BPF);
    expect(Object.entries(plugin.bpf?.[0]?.programs ?? {})).toEqual([
      ['cil_lb_from_container', { attach: 'from-container', slot: 'service' }],
      ['cil_lb_to_container', { attach: 'to-container', slot: 'service' }],
      ['cil_lb_from_netdev', { attach: 'from-netdev', slot: 'service' }],
    ]);
    expect(plugin.bpf?.map((b) => b.name)).toEqual(['lb', 'sock']);
    expect(plugin.bpf?.[1]?.programs).toBeUndefined(); // attached to cgroup hooks at start
    const pinRoot = `/sys/fs/bpf/cilia-test-kpr-${process.pid}`;
    ensureBpffs(pinRoot);
    const lb = BpfObject.open(fileURLToPath(LB_OBJECT), { pinRoot, constants: { LB_MAGLEV_TABLE_SIZE: 65521, SNAT_IPV4: 0x0a000001 } });
    const sock = BpfObject.open(fileURLToPath(SOCK_OBJECT), { pinRoot, constants: { LB_MAGLEV_TABLE_SIZE: 65521, SOCK_HOST_NETNS_ONLY: 1, HOST_NETNS_COOKIE: 7n } });
    try {
      lb.load();
      sock.load();
      expect(Object.keys(plugin.bpf![0]!.programs!).map((p) => lb.program(p).id > 0)).toEqual([true, true, true]);
      expect(Object.keys(SOCK_PROGRAMS).map((p) => sock.program(p).id > 0)).toEqual([true, true, true, true]);
    } finally {
      lb.close();
      sock.close();
      rmSync(pinRoot, { recursive: true, force: true });
    }
  });
});
