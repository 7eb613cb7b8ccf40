#!/usr/bin/env node
// Cross-node pod-to-pod TCP throughput (iperf3) in each routing mode of the lab, against
// node-to-node throughput (the node namespaces themselves, no pods) of the same lab in the same
// run: a 2-node lab per mode, one pod per node. Rounds alternate between them so machine
// noise hits all; medians and the pod/node ratio are printed (targets: native ≥ 0.9,
// overlays ≥ 0.85; Cilium's VXLAN mode reached 0.91 in its published figures). A third figure
// separates the cost of the pod hops from Cilia's: "bare" pods — a veth each, routed by the
// nodes' kernels across the underlay, no programs — in the same lab.
// The ratios are medians of per-round ratios (node, bare and pod runs of one round sit next to
// each other in time), which holds up better on a noisy machine than a ratio of medians.
// TCP's congestion control decides much of the result: the machine's default (BBR here, which
// paces) leaves CPU idle, while cubic saturates the sender's CPU and so shows the datapath's
// cost per byte; pass one to compare (`cubic`, `bbr`; the default is the machine's own).
// A mode may carry agent settings after "@" (joined by "&"), as the lab's --set takes them:
// `native@datapath.bigTcp=false` is a mode without BIG TCP, which every routing preset turns on
// where the kernel and devices allow (in the lab they do: its underlay passes any GSO size);
// the default list runs each mode with and without it.
// Needs root, iperf3, etcd and a build. A mode whose plugin is not built is reported and skipped.
// The application's write size matters too: iperf3 writes 128 KiB at a time by default, and
// what is left of each write past whole 64 KiB GSO packets goes out as packets of its own —
// 2456 bytes at an overlay's MSS of 1398, which Nagle splits into two, against one 752-byte
// packet at 1448: about a fifth more packets per byte for the overlays, whatever the datapath.
// With BIG TCP (192 KiB GSO packets, the presets' default where possible) a whole write fits
// one packet in every mode, and that difference goes.
// Argument 6 sets iperf3's write length (`1M`) for a run that measures the datapath rather
// than that arithmetic.
// usage: node test/bench/cross-node-throughput.mjs [seconds per run] [rounds] [modes, comma-separated] [congestion control] [write length]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const LAB = fileURLToPath(new URL('../../tools/lab/lab.mjs', import.meta.url));

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 5);
const modes = (process.argv[4] ?? 'native,native@datapath.bigTcp=false,vxlan,vxlan@datapath.bigTcp=false,geneve,geneve@datapath.bigTcp=false').split(',');
const congestion = process.argv[5] ?? readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
const writeLength = process.argv[6];
const TARGET = { native: 0.9, vxlan: 0.85, geneve: 0.85 };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `npm run lab -- <args> --prefix <prefix>`; throws with its output on failure. */
function lab(prefix, ...args) {
  const r = spawnSync(process.execPath, [LAB, ...args, '--prefix', prefix], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error((r.stderr || r.stdout).trim().replace(/^lab: /, ''));
}

function api(socketPath, method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request({ socketPath, path, method, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Gbit/s received, and the sender's TCP retransmits (segments lost or cut on the way show up here). */
function throughput(ns, ip) {
  const args = ['netns', 'exec', ns, 'iperf3', '-c', ip, '-t', String(seconds), '-C', congestion, ...(writeLength ? ['-l', writeLength] : []), '-J'];
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 from ${ns} to ${ip} failed: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  const end = JSON.parse(r.stdout).end;
  return { gbps: end.sum_received.bits_per_second / 1e9, retransmits: end.sum_sent.retransmits ?? 0 };
}

const sh = (...args) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** A bare pod behind node k: 10.201.k.10 on a veth, routed by the node's kernel, no programs. */
function barePod(prefix, k) {
  const ns = `${prefix}-bare${k}`;
  const node = `${prefix}-${k}`;
  const ip = `10.201.${k}.10`;
  sh('netns', 'add', ns);
  sh('-n', node, 'link', 'add', 'bare0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  sh('-n', node, 'link', 'set', 'bare0', 'up');
  sh('-n', ns, 'link', 'set', 'lo', 'up');
  sh('-n', ns, 'link', 'set', 'eth0', 'up');
  sh('-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0');
  sh('-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
  sh('-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
  const mac = JSON.parse(sh('-n', node, '-j', 'link', 'show', 'bare0'))[0].address;
  sh('-n', ns, 'neigh', 'add', '169.254.1.1', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
  sh('-n', node, 'route', 'add', `${ip}/32`, 'dev', 'bare0');
  sh('-n', node, 'route', 'add', `10.201.${3 - k}.0/24`, 'via', `172.30.0.${3 - k}`);
  spawnSync('ip', ['netns', 'exec', node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return { ns, ip };
}

async function benchMode(mode) {
  const [routing, settings] = mode.split('@');
  const prefix = `b${randomBytes(3).toString('hex')}`;
  const servers = [];
  try {
    lab(prefix, 'up', '--nodes', '2', '--routing', routing, ...(settings ? settings.split('&').flatMap((s) => ['--set', s]) : []));
    const sock = (k) => `/var/run/cilia/${prefix}-${k}/cilia.sock`;
    const pod = async (k, name) => {
      const r = await api(sock(k), 'POST', '/v1/endpoints', { name, namespace: `bench${prefix}`, labels: { 'k8s:app': name } });
      if (r.status !== 201) throw new Error(`pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      return { ns: r.body.netns.replace('/run/netns/', ''), ip: r.body.ipv4 };
    };
    const client = await pod(1, 'client');
    const server = await pod(2, 'server');
    const bareClient = barePod(prefix, 1);
    const bareServer = barePod(prefix, 2);
    for (const ns of [server.ns, `${prefix}-2`, bareServer.ns]) servers.push(spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    // The server pod's ipcache entry reaches node 1 through etcd: wait until a ping crosses.
    for (let i = 0; spawnSync('ip', ['netns', 'exec', client.ns, 'ping', '-c', '1', '-W', '1', server.ip]).status !== 0; i++) {
      if (i > 30) throw new Error(`pod ${client.ip} cannot reach pod ${server.ip} in mode ${routing}`);
    }
    const nodes = [];
    const bare = [];
    const pods = [];
    for (let i = 0; i < rounds; i++) {
      nodes.push(throughput(`${prefix}-1`, '172.30.0.2'));
      bare.push(throughput(bareClient.ns, bareServer.ip));
      pods.push(throughput(client.ns, server.ip));
    }
    const gbps = (runs) => median(runs.map((r) => r.gbps));
    const ratio = (a, b) => median(a.map((r, i) => r.gbps / b[i].gbps));
    const retransmits = (runs) => runs.reduce((n, r) => n + r.retransmits, 0);
    return {
      nodes: gbps(nodes),
      bare: gbps(bare),
      pods: gbps(pods),
      podNode: ratio(pods, nodes),
      bareNode: ratio(bare, nodes),
      podBare: ratio(pods, bare),
      retransmits: { nodes: retransmits(nodes), pods: retransmits(pods) },
    };
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    spawnSync(process.execPath, [LAB, 'down', '--prefix', prefix]);
    for (const k of [1, 2]) spawnSync('ip', ['netns', 'delete', `${prefix}-bare${k}`]);
  }
}

let failed = false;
console.log(`cross-node TCP throughput, iperf3 ${seconds} s × ${rounds} rounds per mode, congestion control ${congestion}, writes of ${writeLength ?? '128K (iperf3 default)'}`);
console.log('Gbit/s are medians; ratios are medians of per-round ratios');
console.log('mode\tnode→node\tbare pods\tpod→pod\tpod/node\ttarget\t\tbare/node\tpod/bare\tretransmits node/pod (all rounds)');
for (const mode of modes) {
  const target = TARGET[mode.split('@')[0]];
  try {
    const r = await benchMode(mode);
    const verdict = `≥ ${target ?? '?'}${r.podNode < (target ?? 0) ? ' (below)' : ''}`;
    console.log(
      `${mode}\t${r.nodes.toFixed(2)}\t\t${r.bare.toFixed(2)}\t\t${r.pods.toFixed(2)}\t${r.podNode.toFixed(2)}\t\t${verdict.padEnd(14)}\t${r.bareNode.toFixed(2)}\t\t${r.podBare.toFixed(2)}\t${r.retransmits.nodes}/${r.retransmits.pods}`,
    );
  } catch (err) {
    // A mode whose plugin is not built or installed is not this benchmark's failure.
    const missing = /^--routing \S+: missing /.test(err.message);
    failed ||= !missing;
    console.log(`${mode}\t${missing ? 'skipped' : 'failed'}: ${err.message}`);
  }
}
process.exit(failed ? 1 : 0);
