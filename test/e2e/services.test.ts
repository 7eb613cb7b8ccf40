// The kube-proxy replacement on one node, for real: the agent with @cilia/plugin-kube-proxy-
// replacement in a node network namespace, Services and EndpointSlices as manifest files, pods
// made through the API, and real clients (svc-tool.mjs: node's net and dgram) in pod and node
// namespaces — in the node's own cgroup, where the plugin's socket hooks sit.
import { join } from 'node:path';
import { BpfMap, PerCpuMap } from '@cilia/bpf';
import type { Endpoint } from '@cilia/core';
import { datapathMaps as m } from '@cilia/datapath';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podNs, ServiceNode, type ToolResult } from './services/node.js';

const node = new ServiceNode('172.31.251.1', '172.31.251.2', '10.244.9.0/24');
const R = Number.parseInt(node.run.slice(0, 2), 16);
const VIP = `10.96.${R}.10`;
const EMPTY_VIP = `10.96.${R}.11`;

const service = (name: string, clusterIP: string, ports: object[]) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: node.k8sNamespace }, spec: { clusterIP, ports } });
const slice = (name: string, svc: string, pods: readonly Endpoint[], conditions: Record<string, object> = {}) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: node.k8sNamespace, labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  ports: [
    { name: 'http', port: 8080, protocol: 'TCP' },
    { name: 'dns', port: 5353, protocol: 'UDP' },
  ],
  endpoints: pods.map((p) => ({ addresses: [p.ipv4], nodeName: `svc-${node.run}`, ...(conditions[p.name] ? { conditions: conditions[p.name] } : {}) })),
});
const WEB_PORTS = [
  { name: 'http', port: 80, targetPort: 8080 },
  { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
];

let client: Endpoint;
let backends: Endpoint[];
let services: BpfMap<m.Lb4KeyValue, m.Lb4ServiceValue>;

/** Waits until the frontend's slot 0 says `count` backends (the manifest was read and written). */
async function programmed(address: string, port: number, proto: number, count: number): Promise<void> {
  for (const deadline = Date.now() + 10_000; ; ) {
    if (services.lookup({ address, dport: port, backendSlot: 0, proto })?.count === count) return;
    if (Date.now() > deadline) throw new Error(`${address}:${port} not programmed with ${count} backends`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each backend's share of the answers is at least `min`, and every connection was answered. */
function balanced(r: ToolResult, total: number, names: readonly string[], min = 0.15): void {
  expect(r.errors).toEqual({});
  expect(Object.keys(r.answers).sort()).toEqual([...names].sort());
  for (const name of names) expect(r.answers[name]! / total, `${name}: ${JSON.stringify(r.answers)}`).toBeGreaterThanOrEqual(min);
}

beforeAll(async () => {
  try {
    await node.up();
    services = BpfMap.openPinned(join(node.bpfRoot, m.MapName.lbServices), { key: m.Lb4Key, value: m.Lb4Service });
    client = await node.pod('client');
    backends = [await node.pod('b1'), await node.pod('b2'), await node.pod('b3')];
    for (const b of backends) await node.serve(b);
    node.manifest('web.yaml', service('web', VIP, WEB_PORTS), slice('web-1', 'web', backends));
    node.manifest('empty.yaml', service('empty', EMPTY_VIP, WEB_PORTS));
    await programmed(VIP, 80, 6, 3);
    await programmed(EMPTY_VIP, 80, 6, 0);
  } catch (err) {
    await node.down();
    throw err;
  }
}, 90_000);

afterAll(async () => {
  services?.close();
  await node.down();
}, 60_000);

describe('socket-level load balancing (cgroup connect/sendmsg/recvmsg/getpeername)', () => {
  it('balances 300 TCP connections of a pod to a ClusterIP over every backend, translated at connect: the SYN on the pod\'s veth goes to a backend, no NAT state', async () => {
    let result: ToolResult | undefined;
    const syns = await node.capture(client.hostInterface, 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', ['ip.dst', 'tcp.dstport'], async () => {
      result = await node.client(podNs(client), ['tcp', VIP, '80', '300']);
    });
    balanced(result!, 300, ['b1', 'b2', 'b3']);
    // getpeername shows the service, not the backend.
    expect(result!.peers).toEqual([VIP]);
    expect(syns.length).toBeGreaterThanOrEqual(300);
    expect(new Set(syns.map(([dst, port]) => `${dst}:${port}`))).toEqual(new Set(backends.map((b) => `${b.ipv4}:8080`)));
    // Nothing was translated per packet: no flow to the frontend, no conntrack entry naming one.
    const flows = BpfMap.openPinned(join(node.bpfRoot, m.MapName.lbFlows), { key: m.CtKey, value: m.Lb4Flow });
    const ct = BpfMap.openPinned(join(node.bpfRoot, m.MapName.conntrack), { key: m.CtKey, value: m.CtValue });
    try {
      expect([...flows.keys()].filter((k) => k.saddr === client.ipv4)).toEqual([]);
      const mine = [...ct.entries()].filter(([k]) => k.saddr === client.ipv4 && k.dport === 8080);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.filter(([, v]) => v.revNatIndex !== 0)).toEqual([]);
    } finally {
      flows.close();
      ct.close();
    }
  }, 60_000);

  it('balances a host process\'s connections too', async () => {
    balanced(await node.client(node.netns, ['tcp', VIP, '80', '150']), 150, ['b1', 'b2', 'b3']);
  }, 30_000);

  it('answers UDP requests to the ClusterIP from the ClusterIP (recvmsg shows the service)', async () => {
    const r = await node.client(podNs(client), ['udp', VIP, '53', '60']);
    balanced(r, 60, ['b1', 'b2', 'b3'], 0.1);
    expect(r.from).toEqual([`${VIP}:53`]);
  }, 30_000);

  it('refuses a connection to a service without backends at once (ECONNREFUSED, TCP and UDP), counted as NO_SERVICE', async () => {
    const metrics = PerCpuMap.openPinnedPerCpu(join(node.bpfRoot, m.MapName.metrics), { key: m.MetricsKey, value: m.MetricsValue });
    const refused = () => (metrics.lookup({ reason: m.DropReason.noService, dir: m.Direction.egress }) ?? []).reduce((n, v) => n + v.packets, 0);
    try {
      const before = refused();
      const tcp = await node.client(podNs(client), ['tcp', EMPTY_VIP, '80', '5', '1']);
      expect(tcp).toMatchObject({ answers: {}, errors: { ECONNREFUSED: 5 } });
      expect(tcp.ms).toBeLessThan(1000);
      const udp = await node.client(podNs(client), ['udp', EMPTY_VIP, '53', '1']);
      expect(udp.errors).toEqual({ ECONNREFUSED: 1 });
      expect(refused()).toBe(before + 6);
    } finally {
      metrics.close();
    }
  }, 30_000);

  it('sends new connections only to the backends left after one terminates, and to it when it is the last', async () => {
    node.manifest('web.yaml', service('web', VIP, WEB_PORTS), slice('web-1', 'web', backends, { b3: { ready: false, serving: true, terminating: true } }));
    await programmed(VIP, 80, 6, 2);
    balanced(await node.client(podNs(client), ['tcp', VIP, '80', '60']), 60, ['b1', 'b2']);
    node.manifest('web.yaml', service('web', VIP, WEB_PORTS), slice('web-1', 'web', [backends[2]!], { b3: { ready: false, serving: true, terminating: true } }));
    await programmed(VIP, 80, 6, 1);
    expect((await node.client(podNs(client), ['tcp', VIP, '80', '10'])).answers).toEqual({ b3: 10 });
    node.manifest('web.yaml', service('web', VIP, WEB_PORTS), slice('web-1', 'web', backends));
    await programmed(VIP, 80, 6, 3);
  }, 30_000);
});

describe('per-packet load balancing (lb.socketLB.hostNamespaceOnly: pods are translated in the datapath)', () => {
  beforeAll(async () => {
    await node.kill();
    node.writeConfig({ socketLB: { hostNamespaceOnly: true } });
    await node.start();
  }, 60_000);

  it('balances a pod\'s connections in the service slot: the SYN on its veth goes to the ClusterIP, the replies come from it; a UDP flow stays on one backend', async () => {
    let result: ToolResult | undefined;
    const syns = await node.capture(client.hostInterface, 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn', ['ip.dst'], async () => {
      result = await node.client(podNs(client), ['tcp', VIP, '80', '150']);
    });
    balanced(result!, 150, ['b1', 'b2', 'b3']);
    expect(result!.peers).toEqual([VIP]);
    expect(new Set(syns.map(([dst]) => dst))).toEqual(new Set([VIP]));
    // One UDP socket is one flow: per packet, all its datagrams go to the backend it got first.
    const udp = await node.client(podNs(client), ['udp', VIP, '53', '30']);
    expect(udp.errors).toEqual({});
    expect(Object.values(udp.answers)).toEqual([30]);
    expect(udp.from).toEqual([`${VIP}:53`]);
  }, 60_000);

  it('still translates the host\'s own connections at the socket', async () => {
    balanced(await node.client(node.netns, ['tcp', VIP, '80', '90']), 90, ['b1', 'b2', 'b3']);
  }, 30_000);

  it('refuses a pod\'s connection to a service without backends with ICMP port unreachable: ECONNREFUSED at once', async () => {
    const r = await node.client(podNs(client), ['tcp', EMPTY_VIP, '80', '3', '1']);
    expect(r).toMatchObject({ answers: {}, errors: { ECONNREFUSED: 3 } });
    expect(r.ms).toBeLessThan(1000);
  }, 30_000);
});
