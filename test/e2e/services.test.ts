// The kube-proxy replacement on one node, for real: the agent with @cilia/plugin-kube-proxy-
// replacement in a node network namespace, Services and EndpointSlices as manifest files, pods
// made through the API, and real clients (svc-tool.mjs: node's net and dgram) in pod and node
// namespaces — in the node's own cgroup, where the plugin's socket hooks sit.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BpfMap, codec, PerCpuMap } from '@cilia/bpf';
import type { LbMapsReport, ServiceListResponse } from '@cilia/api-client';
import type { Endpoint } from '@cilia/core';
import { datapathMaps as m } from '@cilia/datapath';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, REPO } from '../support/agent.js';
import { podNs, ServiceNode, sh, type ToolResult } from './services/node.js';

const CLI_MAIN = join(REPO, 'apps/cli/dist/main.js');

const node = new ServiceNode('172.31.251.1', '172.31.251.2', '10.244.9.0/24', '172.31.251.3');
const R = Number.parseInt(node.run.slice(0, 2), 16);
const VIP = `10.96.${R}.10`;
const EMPTY_VIP = `10.96.${R}.11`;
const EXTERNAL_IP = `198.51.100.${R}`;
const LB_IP = `203.0.113.${R}`;
const STICKY_VIP = `10.96.${R}.12`;

const service = (name: string, clusterIP: string, ports: object[]) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: node.k8sNamespace }, spec: { clusterIP, ports } });
/** A backend address and the node it runs on: a pod of this node, or the far host ("another node"). */
type Member = Pick<Endpoint, 'name' | 'ipv4'> & { readonly nodeName?: string };
const FAR: Member = { name: 'far', ipv4: node.farIp, nodeName: 'node-elsewhere' };
const slice = (name: string, svc: string, pods: readonly Member[], conditions: Record<string, object> = {}) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: node.k8sNamespace, labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  ports: [
    { name: 'http', port: 8080, protocol: 'TCP' },
    { name: 'dns', port: 5353, protocol: 'UDP' },
  ],
  endpoints: pods.map((p) => ({ addresses: [p.ipv4], nodeName: p.nodeName ?? `svc-${node.run}`, ...(conditions[p.name] ? { conditions: conditions[p.name] } : {}) })),
});
/** A Service reached from outside: type NodePort (or LoadBalancer with `lbIp`), node ports from 30080 + `n`. */
const external = (name: string, n: number, extra: { externalTrafficPolicy?: string; externalIPs?: string[]; lbIp?: string } = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: node.k8sNamespace },
  spec: {
    type: extra.lbIp ? 'LoadBalancer' : 'NodePort',
    clusterIP: `10.96.${R}.${20 + n}`,
    ports: [
      { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 + n },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353, nodePort: 30080 + n },
    ],
    ...(extra.externalTrafficPolicy ? { externalTrafficPolicy: extra.externalTrafficPolicy } : {}),
    ...(extra.externalIPs ? { externalIPs: extra.externalIPs } : {}),
  },
  ...(extra.lbIp ? { status: { loadBalancer: { ingress: [{ ip: extra.lbIp }] } } } : {}),
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
    await node.serve({ name: 'far', ns: node.far });
    node.manifest('web.yaml', service('web', VIP, WEB_PORTS), slice('web-1', 'web', backends));
    node.manifest('empty.yaml', service('empty', EMPTY_VIP, WEB_PORTS));
    // From outside: every backend (two pods here, one on "another node"); Local with a local
    // backend and a remote one; Local with only a remote one.
    node.manifest('np.yaml', external('np', 0, { externalIPs: [EXTERNAL_IP] }), slice('np-1', 'np', [backends[0]!, backends[1]!, FAR]));
    node.manifest('np-local.yaml', external('np-local', 1, { externalTrafficPolicy: 'Local' }), slice('np-local-1', 'np-local', [backends[2]!, FAR]));
    node.manifest('np-none.yaml', external('np-none', 2, { externalTrafficPolicy: 'Local' }), slice('np-none-1', 'np-none', [FAR]));
    node.manifest('lb.yaml', external('lb', 3, { lbIp: LB_IP }), slice('lb-1', 'lb', [backends[0]!, FAR]));
    node.manifest('sticky.yaml', { ...service('sticky', STICKY_VIP, WEB_PORTS), spec: { clusterIP: STICKY_VIP, ports: WEB_PORTS, sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } } }, slice('sticky-1', 'sticky', backends));
    node.manifest('churn.yaml', external('churn', 4), slice('churn-1', 'churn', [backends[0]!]));
    // The client outside reaches the ExternalIP and the LoadBalancer IP through the node.
    for (const ip of [EXTERNAL_IP, LB_IP]) sh('ip', ['-n', node.outside, 'route', 'add', `${ip}/32`, 'via', node.nodeIp]);
    await programmed(VIP, 80, 6, 3);
    await programmed(EMPTY_VIP, 80, 6, 0);
    await programmed(node.nodeIp, 30080, 6, 3);
    await programmed(node.nodeIp, 30081, 6, 1);
    await programmed(node.nodeIp, 30082, 6, 0);
    await programmed(LB_IP, 80, 6, 2);
    await programmed(STICKY_VIP, 80, 6, 3);
    await programmed(node.nodeIp, 30084, 6, 1);
  } catch (err) {
    await node.down();
    throw err;
  }
}, 150_000);

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

/** Connections to frontend `address:port` the per-packet path has translated to `backend` (cilia_lb4_flows entries). */
function flowsTo(address: string, port: number, backend: string): number {
  const frontend = services.lookup({ address, dport: port, backendSlot: 0, proto: 6 })?.revNatIndex;
  const flows = BpfMap.openPinned(join(node.bpfRoot, m.MapName.lbFlows), { key: m.CtKey, value: m.Lb4Flow });
  const backendMap = BpfMap.openPinned(join(node.bpfRoot, m.MapName.lbBackends), { key: codec.u32, value: m.Lb4Backend });
  try {
    const ids = new Set([...backendMap.entries()].filter(([, v]) => v.address === backend).map(([id]) => id));
    return [...flows.entries()].filter(([, v]) => v.revNatIndex === frontend && ids.has(v.backendId)).length;
  } finally {
    flows.close();
    backendMap.close();
  }
}

/** A frontend's backends as the agent has written them (`GET /v1/services`): "ADDRESS STATE", selectable ones first. */
async function backendStates(frontend: string): Promise<string[]> {
  const r = await api<ServiceListResponse>(node.socket, 'GET', '/v1/services');
  const f = r.body.services.find((s) => `${s.frontend.address}:${s.frontend.port}/${s.frontend.protocol}` === frontend);
  return (f?.backends ?? []).map((b) => `${b.address} ${b.state}`);
}

describe('session affinity (ClientIP, at the socket: by the client\'s network namespace)', () => {
  it('sends 50 connections of one client to one backend, and chooses again once the affinity has timed out', async () => {
    const first = await node.client(podNs(client), ['tcp', STICKY_VIP, '80', '50']);
    expect(first.errors).toEqual({});
    expect(Object.values(first.answers)).toEqual([50]);
    // Age the client's affinity past its timeout (60 s) before each new connection.
    const id = services.lookup({ address: STICKY_VIP, dport: 80, backendSlot: 0, proto: 6 })!.revNatIndex;
    const affinity = BpfMap.openPinned(join(node.bpfRoot, m.MapName.lbAffinity), { key: m.LbAffinityKey, value: m.LbAffinityValue });
    const chosen = new Set(Object.keys(first.answers));
    try {
      for (let i = 0; i < 8 && chosen.size < 2; i++) {
        for (const [k, v] of affinity.entries()) if (k.revNatIndex === id) affinity.update(k, { ...v, lastUsedNs: process.hrtime.bigint() - 61_000_000_000n });
        for (const name of Object.keys((await node.client(podNs(client), ['tcp', STICKY_VIP, '80', '1'])).answers)) chosen.add(name);
      }
    } finally {
      affinity.close();
    }
    expect(chosen.size).toBeGreaterThan(1);
  }, 30_000);
});

describe('from outside the cluster through the node (per packet, in the from-netdev service slot)', () => {
  /** A client in the outside namespace: no socket hook sees it. */
  const outside = (args: readonly string[]) => node.client(node.outside, args, { cgroup: false });

  it('balances NodePort connections to the node address over local backends and one on another node (SNAT to the node, replies translated back)', async () => {
    const r = await outside(['tcp', node.nodeIp, '30080', '150']);
    balanced(r, 150, ['b1', 'b2', 'far']);
    expect(r.peers).toEqual([node.nodeIp]);
    const udp = await outside(['udp', node.nodeIp, '30080', '30']);
    expect(udp.errors).toEqual({});
    expect(udp.from).toEqual([`${node.nodeIp}:30080`]);
  }, 30_000);

  it('serves ExternalIPs and LoadBalancer ingress IPs likewise', async () => {
    balanced(await outside(['tcp', EXTERNAL_IP, '80', '90']), 90, ['b1', 'b2', 'far']);
    const lb = await outside(['tcp', LB_IP, '80', '60']);
    balanced(lb, 60, ['b1', 'far']);
    expect(lb.peers).toEqual([LB_IP]);
  }, 30_000);

  it('backend churn under a client\'s loop: a terminating backend finishes its long transfer and takes no new connection, a deleted one gets none once realized, no connection fails', async () => {
    const port = '30084';
    // A long transfer on b1, the only backend, and new connections every 20 ms.
    const stream = node.client(node.outside, ['stream', node.nodeIp, port, '3000'], { cgroup: false });
    const loop = node.loop(node.outside, [node.nodeIp, port], { cgroup: false });
    // The transfer and the loop's first connections are on b1.
    await expect.poll(() => flowsTo(node.nodeIp, 30084, backends[0]!.ipv4!), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    // b1 terminates, b2 is ready: new connections go to b2, b1 keeps its transfer.
    node.manifest('churn.yaml', external('churn', 4), slice('churn-1', 'churn', [backends[0]!, backends[1]!], { b1: { ready: false, serving: true, terminating: true } }));
    await expect.poll(() => backendStates(`${node.nodeIp}:30084/TCP`), { timeout: 10_000 }).toEqual([`${backends[1]!.ipv4} active`, `${backends[0]!.ipv4} terminating`]);
    expect(await stream).toMatchObject({ error: null });
    expect((await stream).bytes).toBeGreaterThan(1_000_000);
    // b1's endpoint is deleted.
    node.manifest('churn.yaml', external('churn', 4), slice('churn-1', 'churn', [backends[1]!]));
    await expect.poll(() => backendStates(`${node.nodeIp}:30084/TCP`), { timeout: 10_000 }).toEqual([`${backends[1]!.ipv4} active`]);
    const during = await loop.stop();
    expect(during.errors).toEqual({});
    expect(during.answers.b1 ?? 0).toBeGreaterThan(0);
    expect(during.answers.b2 ?? 0).toBeGreaterThan(0);
    expect((await node.client(node.outside, ['tcp', node.nodeIp, port, '40'], { cgroup: false })).answers).toEqual({ b2: 40 });
  }, 60_000);

  it('serves externalTrafficPolicy: Local from this node\'s backends only, and does not answer without one', async () => {
    expect((await outside(['tcp', node.nodeIp, '30081', '30'])).answers).toEqual({ b3: 30 });
    const none = await outside(['tcp', node.nodeIp, '30082', '2', '2']);
    expect(none).toMatchObject({ answers: {}, errors: { TIMEOUT: 2 } });
  }, 30_000);
});

const API_VIP = `10.97.${R}.10`;
let apiServiceId = 0;

/** The real CLI against the node's agent. */
function cilia(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_MAIN, '--socket', node.socket, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('services through the API and the CLI (cilia service, cilia bpf lb list)', () => {
  it('creates a service with cilia service create: programmed, balanced, listed with its backends as the maps hold them', async () => {
    const created = cilia('service', 'create', '--frontend', `${API_VIP}:80/TCP`, '--backend', `${backends[0]!.ipv4}:8080,${backends[1]!.ipv4}:8080`, '--name', 'by-hand', '-o', 'json');
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    apiServiceId = (JSON.parse(created.stdout) as { id: number }).id;
    expect(apiServiceId).toBeGreaterThan(0);
    balanced(await node.client(podNs(client), ['tcp', API_VIP, '80', '60']), 60, ['b1', 'b2']);
    const list = cilia('service', 'list');
    expect(list.code).toBe(0);
    const mine = list.stdout.split('\n').filter((l) => l.includes(`${API_VIP}:80/TCP`));
    expect(mine).toHaveLength(2);
    for (const l of mine) expect(l).toMatch(new RegExp(`^${apiServiceId} +${API_VIP.replace(/\./g, '\\.')}:80/TCP +ClusterIP +api +\\d+ => 10\\.244\\.9\\.\\d+:8080 \\(active\\)$`));
    // The ClusterIP of a Service from a manifest is listed with its owner.
    expect(list.stdout).toMatch(new RegExp(`ClusterIP +Service ${node.k8sNamespace}/web `));
    const maps = JSON.parse(cilia('bpf', 'lb', 'list', '-o', 'json').stdout) as LbMapsReport;
    const slots = maps.services.filter((e) => e.frontend === `${API_VIP}:80/TCP`);
    expect(slots.map((e) => e.slot).sort()).toEqual([0, 1, 2]);
    expect(slots.find((e) => e.slot === 0)).toMatchObject({ revNatIndex: apiServiceId, count: 2, type: 'ClusterIP', algorithm: 'random' });
    const ids = new Set(slots.filter((e) => e.slot > 0).map((e) => e.backendId));
    expect(maps.backends.filter((b) => ids.has(b.id)).map((b) => b.address).sort()).toEqual([backends[0]!.ipv4, backends[1]!.ipv4].sort());
    expect(cilia('bpf', 'lb', 'list').stdout).toMatch(new RegExp(`^${API_VIP.replace(/\./g, '\\.')}:80/TCP +0 +${apiServiceId} +2 backends +ClusterIP, random$`, 'm'));
  }, 30_000);

  it('refuses a bad service naming the field, and a frontend a Service owns, changing nothing', async () => {
    const before = cilia('bpf', 'lb', 'list', '-o', 'json').stdout;
    const bad = await api<{ error: string; path: string }>(node.socket, 'PUT', '/v1/services', { frontend: { address: API_VIP, port: 80 }, backends: [{ address: '10.0.0.300', port: 8080 }] });
    expect(bad.status).toBe(400);
    expect(bad.body.path).toBe('backends[0].address');
    const taken = cilia('service', 'create', '--frontend', `${VIP}:80/TCP`, '--backend', `${backends[2]!.ipv4}:8080`);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain(`is served by Service ${node.k8sNamespace}/web`);
    expect(cilia('service', 'delete', `${VIP}:80/TCP`).code).not.toBe(0);
    expect(cilia('bpf', 'lb', 'list', '-o', 'json').stdout).toBe(before);
  }, 30_000);
});

describe('per-packet load balancing (lb.socketLB.hostNamespaceOnly: pods are translated in the datapath)', () => {
  it('an agent SIGKILLed under load: streams through a ClusterIP and a NodePort go on without a reset, new connections keep being balanced while it is down, ids unchanged after the restart', async () => {
    const ids = () => new Map([...services.entries()].filter(([k]) => k.backendSlot === 0).map(([k, v]) => [`${k.address}:${k.dport}/${k.proto}`, v.revNatIndex]));
    const before = ids();
    const streams = [node.client(podNs(client), ['stream', VIP, '80', '4000']), node.client(node.outside, ['stream', node.nodeIp, '30080', '4000'], { cgroup: false })];
    const loops = [node.loop(podNs(client), [VIP, '80']), node.loop(node.outside, [node.nodeIp, '30080'], { cgroup: false })];
    await node.kill();
    // Down: the loops go on for a while with nobody to program anything.
    const down = await node.client(node.outside, ['tcp', node.nodeIp, '30080', '60'], { cgroup: false });
    balanced(down, 60, ['b1', 'b2', 'far'], 0.1);
    node.writeConfig({ socketLB: { hostNamespaceOnly: true } });
    await node.start();
    const looped = await Promise.all(loops.map((l) => l.stop()));
    for (const r of await Promise.all(streams)) {
      expect(r).toMatchObject({ error: null });
      expect(r.bytes).toBeGreaterThan(1_000_000);
    }
    for (const r of looped) {
      expect(r.errors).toEqual({});
      expect(Object.keys(r.answers).length).toBeGreaterThan(1);
    }
    expect(ids()).toEqual(before);
  }, 150_000);

  it('keeps the API\'s service across the restart with its id, and deletes it with cilia service delete', async () => {
    const got = JSON.parse(cilia('service', 'get', String(apiServiceId), '-o', 'json').stdout) as { frontend: { address: string }; owner: string };
    expect(got).toMatchObject({ frontend: { address: API_VIP }, owner: 'api' });
    const deleted = cilia('service', 'delete', `${API_VIP}:80`);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`Service ${apiServiceId} deleted: ${API_VIP}:80/TCP\n`);
    expect(services.lookup({ address: API_VIP, dport: 80, backendSlot: 0, proto: 6 })).toBeUndefined();
    expect(cilia('service', 'get', String(apiServiceId)).code).not.toBe(0);
  }, 30_000);

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
