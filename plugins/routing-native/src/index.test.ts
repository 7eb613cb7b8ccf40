// The plugin's shape, and its routes for real in a network namespace of the test's own.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CORE_API_VERSION, composeConfigSchema, parseConfig, resolvePluginSet, Tokens, z, type Logger } from '@cilia/core';
import { deleteNetns, openNetns, type NetlinkHandle } from '@cilia/netlink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin, { NativeRouting } from './index.js';

const silent = { info() {}, debug() {}, warn() {}, error() {}, child: () => silent } as unknown as Logger;
const NS = `cilia-test-native-${randomBytes(3).toString('hex')}`;

interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
  protocol: string;
}
const routes = () => (JSON.parse(execFileSync('ip', ['-n', NS, '-j', 'route', 'show', 'proto', '200'], { encoding: 'utf8' }) || '[]') as IpRoute[]).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();

describe('@cilia/plugin-routing-native', () => {
  it('provides the Encapsulation, needs no other token and takes no settings', () => {
    const set = resolvePluginSet([{ definition: plugin, origin: 'configured' }], { coreVersion: CORE_API_VERSION, hostTokens: [] });
    expect(set.providers.get(Tokens.Encapsulation.id)).toEqual([plugin]);
    expect(plugin.requires ?? []).toEqual([]);
    const schema = composeConfigSchema(z.object({}), [plugin]);
    expect(() => parseConfig(schema, { plugins: [plugin.name], 'routing-native': { tunnel: true } })).toThrow(/routing-native\.tunnel: unknown key/);
  });

  describe('routes in a node namespace', () => {
    let nl: NetlinkHandle;
    beforeAll(async () => {
      execFileSync('ip', ['netns', 'add', NS]);
      execFileSync('ip', ['-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
      execFileSync('ip', ['-n', NS, 'link', 'set', 'eth0p', 'up']);
      execFileSync('ip', ['-n', NS, 'addr', 'add', '172.31.0.1/24', 'dev', 'eth0']);
      execFileSync('ip', ['-n', NS, 'link', 'set', 'eth0', 'up']);
      nl = await openNetns(NS);
    });
    afterAll(async () => {
      await nl?.close();
      await deleteNetns(NS).catch(() => undefined);
    });

    it("routes each other node's pod CIDRs via its IPv4, follows changes, and removes them when it leaves", async () => {
      const routing = new NativeRouting({ logger: silent, netlink: async () => nl });
      expect(routing).toMatchObject({ mode: 'native', overhead: 0 });
      await routing.setup({ name: 'n1', ipv4: '172.31.0.1', podCidrs: ['10.210.1.0/24'] });
      await routing.upsertNode({ name: 'n2', ipv4: '172.31.0.2', podCidrs: ['10.210.2.0/24'] });
      await routing.upsertNode({ name: 'n3', ipv4: '172.31.0.3', podCidrs: ['10.210.3.0/24', 'fd00:3::/64'] });
      expect(routes()).toEqual(['10.210.2.0/24 via 172.31.0.2 dev eth0', '10.210.3.0/24 via 172.31.0.3 dev eth0']);
      // n3 changes its address and pod CIDRs: its old route goes.
      await routing.upsertNode({ name: 'n3', ipv4: '172.31.0.33', podCidrs: ['10.210.33.0/24'] });
      expect(routes()).toEqual(['10.210.2.0/24 via 172.31.0.2 dev eth0', '10.210.33.0/24 via 172.31.0.33 dev eth0']);
      await routing.deleteNode('n2');
      expect(routes()).toEqual(['10.210.33.0/24 via 172.31.0.33 dev eth0']);
      await routing.deleteNode('n2');
      // Routes an earlier run left for a node that left meanwhile go; the current ones stay.
      execFileSync('ip', ['-n', NS, 'route', 'add', '10.210.9.0/24', 'via', '172.31.0.9', 'proto', '200']);
      execFileSync('ip', ['-n', NS, 'route', 'add', '10.210.8.0/24', 'via', '172.31.0.8']);
      await routing.pruneStale();
      expect(routes()).toEqual(['10.210.33.0/24 via 172.31.0.33 dev eth0']);
      expect(execFileSync('ip', ['-n', NS, 'route', 'show', '10.210.8.0/24'], { encoding: 'utf8' })).toContain('via 172.31.0.8');
      // A node without an address of its own gets no routes.
      await routing.upsertNode({ name: 'n3', podCidrs: ['10.210.33.0/24'] });
      expect(routes()).toEqual([]);
    });
  });
});
