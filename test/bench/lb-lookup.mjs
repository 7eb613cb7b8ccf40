#!/usr/bin/env node
// Per-packet cost of the service lookup (target: 100k services ≤ 1.3 × 100 services). The base
// datapath with the kube-proxy replacement's lb.o in its service slots, as the agent installs
// them; a pod's packet to a ClusterIP goes through cil_from_container with BPF_PROG_TEST_RUN
// (the kernel times `repeat` runs). The same packet is measured with N = 100 frontends in
// cilia_lb4_services (the baseline) and, on a second node, with N = 100,000, the measured one
// created last (and first); and, for the floor, a packet to an address that is no frontend (one
// lookup that misses). The rounds of the cases interleave.
//
// Frontends beyond the first 65,535 are written straight into cilia_lb4_services (slot 0 and one
// backend slot each): @cilia/lb gives out at most 65,535 frontend ids (conntrack's u16
// rev_nat_index, as Cilium's), and what a lookup costs depends on how many keys the hash map
// holds, not on who wrote them.
// usage: node test/bench/lb-lookup.mjs [repeat]   (root; after `nx run-many -t build`)
import { loadavg } from 'node:os';
import { packet, skbContext, TestNetwork } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import { loadDatapath } from '@cilia/datapath/testing';
import { LoadBalancer, openLbMaps } from '@cilia/lb';
import { LB_OBJECT, LB_PROGRAMS } from '@cilia/plugin-kube-proxy-replacement';
import { fileURLToPath } from 'node:url';

const REPEAT = Number(process.argv[2] ?? 200_000);
const ROUNDS = 9;
const logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => logger };
const POD = '10.210.0.10';
const BACKEND = '10.210.0.20';

const net = new TestNetwork();
const nodes = [];

/** One node: the base datapath, lb.o in its service slots, a pod and a backend, N frontends. */
function makeNode(n) {
  const dp = loadDatapath();
  const node = { dp, maps: undefined };
  nodes.push(node);
  const lb = dp.load(fileURLToPath(LB_OBJECT), { LB_MAGLEV_TABLE_SIZE: 16381 });
  const slots = dp.lxc.programArray('cilia_tc_slots');
  for (const [program, { attach }] of Object.entries(LB_PROGRAMS)) slots.set(m.slotIndex(attach, 'service'), lb.program(program));
  const link = net.link({ forwarding: true });
  const backendLink = net.link({ forwarding: true });
  const endpoints = dp.lxc.map('cilia_endpoints', { key: m.EndpointKey, value: m.EndpointInfo });
  const pod = { ifindex: 2, hostIfindex: link.ifindex, identity: 4001, endpointId: 101, flags: 0, mac: '02:00:00:aa:00:01', hostMac: link.mac };
  endpoints.update(POD, pod);
  endpoints.update(BACKEND, { ...pod, hostIfindex: backendLink.ifindex, endpointId: 102, mac: '02:00:00:aa:00:02', hostMac: backendLink.mac });
  node.maps = openLbMaps(dp.pinRoot);
  const writer = new LoadBalancer({ maps: node.maps, nodeName: 'bench', maglev: { tableSize: 16381, seed: 0 }, logger });
  // Frontends 1..n: through the writer up to its id limit, then straight into the map.
  const viaWriter = [];
  for (let i = 1; i <= Math.min(n, 65_000); i++) viaWriter.push(service(i));
  writer.apply(viaWriter, []);
  const backendId = writer.backendId(`${BACKEND}:8080/TCP`);
  const direct = [];
  for (let i = 65_001; i <= n; i++) {
    const address = vip(i);
    const revNatIndex = ((i - 1) % 65_535) + 1;
    direct.push([{ address, dport: 80, backendSlot: 0, proto: 6 }, { backendId: 0, affinityTimeout: 0, count: 1, revNatIndex, type: 0, algorithm: 0, flags: 0 }]);
    direct.push([{ address, dport: 80, backendSlot: 1, proto: 6 }, { backendId, affinityTimeout: 0, count: 0, revNatIndex, type: 0, algorithm: 0, flags: 0 }]);
    if (direct.length >= 20_000) node.maps.services.updateBatch(direct.splice(0));
  }
  if (direct.length) node.maps.services.updateBatch(direct);
  if (!node.maps.services.lookup({ address: vip(n), dport: 80, backendSlot: 0, proto: 6 })) throw new Error(`frontend ${n} is not in the map`);
  node.prog = dp.lxc.program('cil_from_container');
  node.ctx = skbContext({ ifindex: link.ifindex });
  node.frame = (dst) => packet().eth({ src: pod.mac, dst: pod.hostMac }).ipv4({ src: POD, dst }).tcp({ sport: 40000, dport: 80, flags: 0x10 }).payload('x').build();
  return node;
}

const vip = (i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const service = (i) => ({
  namespace: 'bench',
  name: `s${i}`,
  frontend: { address: vip(i), port: 80, protocol: 'TCP', type: 'ClusterIP' },
  backends: [{ address: BACKEND, port: 8080, weight: 1, state: 'active' }],
  externalTrafficPolicy: 'Cluster',
  internalTrafficPolicy: 'Cluster',
  sessionAffinitySeconds: 0,
  algorithm: 'random',
});
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

try {
  const small = makeNode(100);
  const big = makeNode(100_000);
  // Each case: a node and a destination. Rounds interleave the cases, so the machine's load
  // (shared, 2 cores) weighs on each alike.
  const cases = [
    ['100: last created', small, vip(100)],
    ['100: no frontend', small, '10.211.0.1'],
    ['100k: last created', big, vip(100_000)],
    ['100k: first created', big, vip(1)],
    ['100k: no frontend', big, '10.211.0.1'],
  ].map(([name, node, dst]) => ({ name, node, data: node.frame(dst), runs: [] }));
  for (const c of cases) c.node.prog.testRun({ data: c.data, ctx: c.node.ctx, repeat: 10_000 }); // warm-up; flow and conntrack entries from here
  for (let r = 0; r < ROUNDS; r++) for (const c of cases) c.runs.push(c.node.prog.testRun({ data: c.data, ctx: c.node.ctx, repeat: REPEAT }).duration);
  const ns = Object.fromEntries(cases.map((c) => [c.name, median(c.runs)]));
  const ratio = ns['100k: last created'] / ns['100: last created'];
  console.log(`service lookup per packet (cil_from_container → service slot, established TCP, BPF_PROG_TEST_RUN repeat ${REPEAT}, median of ${ROUNDS} interleaved rounds)`);
  for (const c of cases) console.log(`  ${c.name.padEnd(20)} ${String(ns[c.name]).padStart(4)} ns${c.name === '100: last created' ? '   (baseline)' : ''}`);
  console.log(`  ratio 100k / 100 (last created) = ${ratio.toFixed(2)}   target ≤ 1.3: ${ratio <= 1.3 ? 'met' : 'NOT met'}`);
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores)`);
  process.exitCode = ratio <= 1.3 ? 0 : 1;
} finally {
  for (const n of nodes) {
    n.maps?.close();
    n.dp.dispose();
  }
  net.remove();
}
