// Other nodes' pod CIDRs in a real LocalIpCache, following a registry's join/change/leave events.
import type { Cidr, IpCacheEntry, Logger, NodeEvent, NodeInfo, NodeRegistry } from '@cilia/core';
import { LocalIpCache } from '@cilia/datapath';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RemotePodCidrs } from './pod-cidrs.js';

const logger = pino({ level: 'silent' }) as unknown as Logger;

/** A registry whose events the test sends (the KvStore-backed one is covered in nodes.test.ts). */
class ScriptedRegistry implements NodeRegistry {
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #listeners = new Set<(e: NodeEvent) => void>();
  local = () => this.#nodes.get('self');
  list = () => [...this.#nodes.values()];
  subscribe(listener: (e: NodeEvent) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  emit(event: NodeEvent): void {
    if (event.type === 'leave') this.#nodes.delete(event.node.name);
    else this.#nodes.set(event.node.name, event.node);
    for (const l of this.#listeners) l(event);
  }
}

const node = (n: number, podCidrs: Cidr[] = [`10.200.${n}.0/24`], extra: Partial<NodeInfo> = {}): NodeInfo => ({
  name: `node-${n}`,
  ipv4: `192.0.2.${n}`,
  podCidrs,
  ...extra,
});

async function setup(known: NodeInfo[] = []) {
  const ipcache = new LocalIpCache(logger);
  const written: { upserts: readonly IpCacheEntry[]; deletes: readonly Cidr[] }[] = [];
  ipcache.attach({ write: (upserts, deletes) => void written.push({ upserts, deletes }), prefixes: () => [] });
  const registry = new ScriptedRegistry();
  registry.emit({ type: 'join', node: { name: 'self', ipv4: '192.0.2.100', podCidrs: ['10.200.100.0/24'] } });
  for (const n of known) registry.emit({ type: 'join', node: n });
  const cidrs = new RemotePodCidrs({ registry, ipcache, node: 'self', logger });
  await cidrs.start();
  const entry = (prefix: string) => ipcache.list().find((e) => e.prefix === prefix);
  return { ipcache, registry, cidrs, written, entry };
}

describe('RemotePodCidrs', () => {
  it('writes every other node’s IPv4 pod CIDRs as the world behind its tunnel endpoint, not this node’s', async () => {
    const { entry, ipcache } = await setup([node(1, ['10.200.1.0/24', 'fd00:1::/64'], { tunnelEndpoint: '198.51.100.1' }), node(2)]);
    expect(entry('10.200.1.0/24')).toEqual({ prefix: '10.200.1.0/24', identity: 2, tunnelEndpoint: '198.51.100.1', node: 'node-1', source: 'kvstore' });
    expect(entry('10.200.2.0/24')).toMatchObject({ identity: 2, tunnelEndpoint: '192.0.2.2', node: 'node-2' });
    expect(ipcache.list().map((e) => e.prefix).sort()).toEqual(['10.200.1.0/24', '10.200.2.0/24']);
  });

  it('follows joins, changed CIDRs and endpoints, and leaves', async () => {
    const { registry, cidrs, entry, ipcache } = await setup();
    registry.emit({ type: 'join', node: node(3) });
    await cidrs.settled();
    expect(entry('10.200.3.0/24')?.tunnelEndpoint).toBe('192.0.2.3');
    registry.emit({ type: 'update', node: node(3, ['10.200.33.0/24'], { tunnelEndpoint: '198.51.100.3' }) });
    await cidrs.settled();
    expect(entry('10.200.3.0/24')).toBeUndefined();
    expect(entry('10.200.33.0/24')?.tunnelEndpoint).toBe('198.51.100.3');
    registry.emit({ type: 'leave', node: node(3) });
    await cidrs.settled();
    expect(ipcache.list()).toEqual([]);
    expect(cidrs.prefixes('node-3')).toEqual([]);
  });

  it('leaves another source’s entry for the same prefix alone, on join and on leave', async () => {
    const { ipcache, registry, cidrs, entry } = await setup();
    const policyCidr: IpCacheEntry = { prefix: '10.200.4.0/24', identity: (1 << 24) + 3, source: 'generated' };
    await ipcache.apply({ upserts: [policyCidr], deletes: [] });
    registry.emit({ type: 'join', node: node(4) });
    await cidrs.settled();
    expect(entry('10.200.4.0/24')).toEqual(policyCidr);
    registry.emit({ type: 'leave', node: node(4) });
    await cidrs.settled();
    expect(entry('10.200.4.0/24')).toEqual(policyCidr);
  });

  it('writes nothing for a node without an address to tunnel to', async () => {
    const { written } = await setup([{ name: 'bare', podCidrs: ['10.200.5.0/24'] }]);
    expect(written.filter((w) => w.upserts.length > 0)).toEqual([]);
  });
});
