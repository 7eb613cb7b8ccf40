// The overlay as the agent runs it, on real links: the receive program's place ahead of the
// base's cil_from_netdev (proven with packets a neighbour namespace sends), the forward slot,
// routes towards other nodes and their removal.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { attachTc, BpfMap, BpfObject, codec, detachTc, ProgramArray, queryTc } from '@cilia/bpf';
import { compileBpf, makePinRoot, removePinRoot, workspaceRoot } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeneveEncapsulation, GENEVE_HANDLES, GENEVE_PROGRAMS, IngressOrder } from './index.js';
import { geneveHeader } from './testing/geneve-frames.js';
import { TestNetwork, type TestLink } from './testing/links.js';
import { ipv4HostOrder } from './underlay.js';

const x = (process.pid % 200) + 20;
const LOCAL = `198.20.${x}.1`;
const PEER = `198.20.${x}.2`;
const REMOTE_POD_CIDR = `10.224.${x}.0/24`;

const net = new TestNetwork();
const objects: BpfObject[] = [];
let pinRoot: string;
let underlay: TestLink & { netns: string };
let host: BpfObject;
let sink: Socket;
const received: Buffer[] = [];

const logger = {
  lines: [] as unknown[][],
  info(...a: unknown[]) { this.lines.push(a); },
  warn(...a: unknown[]) { this.lines.push(a); },
  debug() {},
  error(...a: unknown[]) { this.lines.push(a); },
  child() { return this; },
};

const hostIngress = { direction: 'ingress' as const, handle: 1, priority: 1 };

function decapFailed(): number {
  const metrics = host.perCpuMap('cilia_metrics', { key: m.MetricsKey, value: m.MetricsValue });
  return (metrics.lookup({ reason: m.DropReason.decapFailed, dir: m.Direction.ingress }) ?? []).reduce((n, v) => n + v.packets, 0);
}

/** Sends one UDP datagram carrying a Geneve header this node must refuse (version 1) from the neighbour. */
function sendBadGeneve(tag: number): void {
  const payload = Buffer.concat([geneveHeader({ vni: 7, version: 1 }), Buffer.from([tag])]).toString('hex');
  const script = `const s=require('dgram').createSocket('udp4');s.send(Buffer.from('${payload}','hex'),6081,'${LOCAL}',()=>s.close());`;
  execFileSync('ip', ['netns', 'exec', underlay.netns, process.execPath, '-e', script], { stdio: 'ignore' });
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends until the datagram is seen where expected: the neighbour's ARP for us may take a moment. */
async function sendSeen(expectation: 'dropped' | 'delivered'): Promise<void> {
  const drops = decapFailed();
  const got = received.length;
  let tag = 0;
  await until(`a tunnel packet ${expectation}`, () => {
    if (decapFailed() > drops || received.length > got) return true;
    sendBadGeneve(tag++ & 0xff);
    return false;
  });
  // Exactly one of the two paths saw the packets.
  if (expectation === 'dropped') expect(received.length).toBe(got);
  else expect(decapFailed()).toBe(drops);
}

beforeAll(async () => {
  try {
    underlay = net.linkToNetns(`${LOCAL}/24`, `${PEER}/24`);
    pinRoot = makePinRoot('geneve-plugin');
    // The base's host.o, attached the way libs/datapath does it (tc ingress, handle 1, priority 1).
    host = BpfObject.open(compileBpf('host', { srcDir: join(workspaceRoot(), 'bpf') }), { pinRoot });
    objects.push(host);
    host.load();
    sink = createSocket('udp4');
    sink.on('message', (msg) => received.push(msg));
    await new Promise<void>((resolve, reject) => {
      sink.once('error', reject);
      sink.bind(6081, LOCAL, () => resolve());
    });
  } catch (err) {
    cleanup();
    throw err;
  }
});

function cleanup(): void {
  sink?.close();
  for (const o of objects.splice(0)) o.close();
  net.remove();
  if (pinRoot) removePinRoot(pinRoot);
}
afterAll(cleanup);

describe('the receive program ahead of the base ingress program', () => {
  it('goes in front again after the base attached later, without leaving a gap', async () => {
    const geneve = BpfObject.open(compileBpf('overlay-geneve', { srcDir: new URL('../bpf/', import.meta.url) }), {
      pinRoot,
      constants: { TUNNEL_IPV4: ipv4HostOrder(LOCAL) },
    });
    objects.push(geneve);
    geneve.load();
    const order = new IngressOrder({ program: geneve.program(GENEVE_PROGRAMS.ingress), ifindex: underlay.ifindex, logger: logger as never });
    try {
      expect(order.ensureFront()).toBe(true);
      await sendSeen('dropped');
      // The base arrives with the node's first endpoint: tc runs the newest filter first.
      attachTc(host.program('cil_from_netdev'), { interface: underlay.ifindex, ...hostIngress });
      await sendSeen('delivered');
      expect(order.ensureFront()).toBe(true);
      expect(order.handle).toBe(GENEVE_HANDLES[1]);
      expect(queryTc({ interface: underlay.ifindex, direction: 'ingress', handle: GENEVE_HANDLES[0], priority: 1 })).toBe(0);
      await sendSeen('dropped');
      expect(order.ensureFront()).toBe(false);
      order.detach();
      await sendSeen('delivered');
    } finally {
      order.detach();
      detachTc({ interface: underlay.ifindex, ...hostIngress });
    }
  });
});

describe('GeneveEncapsulation', () => {
  let encapsulation: GeneveEncapsulation;

  it('sets the node up: forward slot, receive program in front of the base, kept there', async () => {
    encapsulation = new GeneveEncapsulation({
      config: { port: 6081, device: underlay.name },
      pinRoot,
      logger: logger as never,
      objectPath: compileBpf('overlay-geneve', { srcDir: new URL('../bpf/', import.meta.url) }),
    });
    await encapsulation.setup({ name: 'local', ipv4: LOCAL, podCidrs: [] });
    expect(encapsulation.underlay?.index).toBe(underlay.ifindex);
    const slotTable = BpfMap.openPinned(join(pinRoot, 'cilia_tc_slots'), { key: codec.u32, value: codec.u32 });
    try {
      expect(new ProgramArray(slotTable).get(m.slotIndex('from-container', 'forward'))).toBeGreaterThan(0);
    } finally {
      slotTable.close();
    }
    const first = encapsulation.ingressHandle;
    expect(first).toBeDefined();
    await sendSeen('dropped');
    // The base attaches after the overlay: the overlay notices and moves in front on its own.
    attachTc(host.program('cil_from_netdev'), { interface: underlay.ifindex, ...hostIngress });
    await until('the receive program moved in front', () => encapsulation.ingressHandle !== first);
    await sendSeen('dropped');
  });

  it('routes other nodes\' pod CIDRs through their tunnel endpoints and removes them when they leave', async () => {
    const routes = () =>
      JSON.parse(execFileSync('ip', ['-j', 'route', 'show', REMOTE_POD_CIDR], { encoding: 'utf8' })) as Array<{ dst: string; gateway?: string; dev: string; protocol: string; flags: string[] }>;
    await encapsulation.upsertNode({ name: 'remote', ipv4: PEER, podCidrs: [REMOTE_POD_CIDR, 'fd00:1::/64'] });
    expect(routes()).toMatchObject([{ dst: REMOTE_POD_CIDR, gateway: PEER, dev: underlay.name, flags: ['onlink'] }]);
    expect(encapsulation.routes('remote')).toHaveLength(1);
    await encapsulation.deleteNode('remote');
    expect(routes()).toEqual([]);
    // A node without any address gets nothing rather than a broken route.
    await encapsulation.upsertNode({ name: 'silent', podCidrs: [REMOTE_POD_CIDR] });
    expect(routes()).toEqual([]);
  });

  it('teardown empties the forward slot and takes the receive program off the underlay', async () => {
    await encapsulation.teardown();
    const slotTable = BpfMap.openPinned(join(pinRoot, 'cilia_tc_slots'), { key: codec.u32, value: codec.u32 });
    try {
      expect(new ProgramArray(slotTable).get(m.slotIndex('from-container', 'forward'))).toBeUndefined();
    } finally {
      slotTable.close();
    }
    for (const handle of GENEVE_HANDLES) expect(queryTc({ interface: underlay.ifindex, direction: 'ingress', handle, priority: 1 })).toBe(0);
    detachTc({ interface: underlay.ifindex, ...hostIngress });
  });
});
