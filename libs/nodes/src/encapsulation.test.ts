import type { Encapsulation, Logger, NodeEvent, NodeInfo, NodeRegistry } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { EncapsulationDriver } from './encapsulation.js';

const node = (k: number): NodeInfo => ({ name: `n${k}`, ipv4: `172.30.0.${k}`, podCidrs: [`10.200.${k}.0/24`], tunnelEndpoint: `172.30.0.${k}` });
const silent = { info() {}, debug() {}, error() {}, warn() {}, child: () => silent } as unknown as Logger;

class FakeRegistry implements NodeRegistry {
  nodes: NodeInfo[] = [];
  listeners = new Set<(e: NodeEvent) => void>();
  local = () => this.nodes[0];
  list = () => this.nodes;
  subscribe(l: (e: NodeEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: NodeEvent) {
    for (const l of this.listeners) l(e);
  }
}

/** Records calls; `slow` makes upserts take a while so ordering shows. */
function recorder(fail?: string) {
  const calls: string[] = [];
  const encapsulation: Encapsulation = {
    mode: 'test',
    overhead: 50,
    setup: async (local) => void calls.push(`setup ${local.name}`),
    upsertNode: async (n) => {
      await new Promise((r) => setTimeout(r, 5));
      if (n.name === fail) throw new Error('boom');
      calls.push(`upsert ${n.name} ${n.podCidrs.join(',')}`);
    },
    deleteNode: async (name) => void calls.push(`delete ${name}`),
    pruneStale: async () => void calls.push('prune'),
  };
  return { calls, encapsulation };
}

describe('EncapsulationDriver', () => {
  it('sets this node up, then upserts the others that are there and that join or change, and deletes those that leave, in order', async () => {
    const registry = new FakeRegistry();
    registry.nodes = [node(1), node(2)];
    const { calls, encapsulation } = recorder();
    const driver = new EncapsulationDriver({ encapsulation, registry, local: node(1), logger: silent });
    await driver.start();
    expect(calls).toEqual(['setup n1', 'upsert n2 10.200.2.0/24']);
    registry.emit({ type: 'join', node: node(3) });
    registry.emit({ type: 'update', node: { ...node(3), podCidrs: ['10.201.3.0/24'] } });
    registry.emit({ type: 'leave', node: node(3) });
    registry.emit({ type: 'leave', node: node(1) }); // this node's own key: not a remote node
    await driver.settled();
    expect(calls.slice(2)).toEqual(['upsert n3 10.200.3.0/24', 'upsert n3 10.201.3.0/24', 'delete n3']);
    driver.stop();
    registry.emit({ type: 'join', node: node(4) });
    await driver.settled();
    expect(calls).not.toContain('upsert n4 10.200.4.0/24');
  });

  it('prunes what belonged to departed nodes only after the upserts queued before', async () => {
    const registry = new FakeRegistry();
    registry.nodes = [node(1)];
    const { calls, encapsulation } = recorder();
    const driver = new EncapsulationDriver({ encapsulation, registry, local: node(1), logger: silent });
    await driver.start();
    registry.emit({ type: 'join', node: node(2) });
    await driver.pruneStale();
    expect(calls).toEqual(['setup n1', 'upsert n2 10.200.2.0/24', 'prune']);
    driver.stop();
  });

  it('goes on after a failed update', async () => {
    const registry = new FakeRegistry();
    registry.nodes = [node(1)];
    const { calls, encapsulation } = recorder('n2');
    const driver = new EncapsulationDriver({ encapsulation, registry, local: node(1), logger: silent });
    await driver.start();
    registry.emit({ type: 'join', node: node(2) });
    registry.emit({ type: 'join', node: node(3) });
    await driver.settled();
    expect(calls).toEqual(['setup n1', 'upsert n3 10.200.3.0/24']);
    driver.stop();
  });

  it('leaves a failed setup to the caller', async () => {
    const registry = new FakeRegistry();
    const encapsulation = { ...recorder().encapsulation, setup: () => Promise.reject(new Error('no device')) };
    await expect(new EncapsulationDriver({ encapsulation, registry, local: node(1), logger: silent }).start()).rejects.toThrow('no device');
    expect(registry.listeners.size).toBe(0);
  });
});
