// Pods across nodes, for real, in each routing mode of the lab (`npm run lab -- up --nodes 3
// --routing vxlan|geneve|native`): every pod reaches every other over TCP, UDP and ICMP; the
// identity crosses the wire (a VXLAN or Geneve VNI equal to the source pod's identity, decoded
// by tshark on the underlay; native: pod addresses on the underlay, identity from the ipcache)
// so that a policy letting only app=frontend reach app=backend holds across nodes; each node's
// own traffic to remote pods crosses too (over an overlay: VNI 1, its host identity); a node
// that leaves takes its routes and its pods' ipcache entries off the others. All three use BIG
// TCP (their presets' `bigTcp: auto`: the lab's underlay passes any GSO size); over the
// overlays, packets over 64 KiB carry outer IPv4 and UDP lengths of 0.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutingLab, tunnelHeaders, type LabPod } from './lab-routing/harness.js';

const cnp = (namespace: string) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'frontend-to-backend', namespace },
  spec: { endpointSelector: { matchLabels: { app: 'backend' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'frontend' } }] }] },
});

/** Each overlay on the underlay: its UDP port, tshark's decoder and VNI field, the device the node routes other nodes' pod CIDRs into. */
const OVERLAYS = {
  vxlan: { port: 8472, decode: 'udp.port==8472,vxlan', vni: 'vxlan.vni', device: 'cilia_vxlan' },
  geneve: { port: 6081, decode: 'udp.port==6081,geneve', vni: 'geneve.vni', device: 'cilia_geneve' },
} as const;

/** Outer IPv4 and UDP lengths a tunnel frame of `length` bytes must carry: 0 where 16 bits cannot hold them (BIG TCP). */
const outerLengths = (length: number) => (length - 14 > 0xffff ? [0, 0] : [length - 14, length - 34]);

describe.each(['vxlan', 'geneve', 'native'] as const)('lab routing %s, 3 nodes', (routing) => {
  const lab = new RoutingLab(routing, 3);
  const overlay = routing === 'native' ? undefined : OVERLAYS[routing];
  /** The frontend's packets to the backend as an overlay carries them (lengths apart). */
  const tunnelled = () => ({ outer: '172.30.0.1 → 172.30.0.2', port: overlay!.port, vni: frontend.endpoint.identity, inner: `${frontend.endpoint.ipv4} → ${backend.endpoint.ipv4}` });
  let frontend: LabPod;
  let backend: LabPod;
  let other: LabPod;
  let pods: LabPod[];

  beforeAll(async () => {
    await lab.up();
    // One pod per node: every pair of pods is a pair of nodes.
    frontend = await lab.addPod('frontend', 1, 'frontend');
    backend = await lab.addPod('backend', 2, 'backend');
    other = await lab.addPod('other', 3, 'other');
    pods = [frontend, backend, other];
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 120_000);

  it('routes every other node’s pod CIDR on each node', () => {
    const via = (k: number) => `10.200.${k}.0/24 via 172.30.0.${k} dev ${overlay?.device ?? 'eth0'}`;
    for (const k of [1, 2, 3]) expect(lab.nodeRoutes(k)).toEqual([1, 2, 3].filter((j) => j !== k).map(via));
  });

  it('lets every pod reach every other pod over TCP, UDP and ICMP', async () => {
    for (const from of pods) {
      for (const to of pods.filter((p) => p !== from)) {
        // The peer's ipcache entry may still be on its way: poll, the way a client retries.
        for (const protocol of ['TCP', 'UDP'] as const) {
          await expect.poll(() => lab.probe(from, to, protocol), { timeout: 15_000, message: `${from.name} → ${to.name} ${protocol}` }).toBe('ok');
        }
        expect(lab.ping(from, to), `${from.name} → ${to.name} ICMP`).toBe(true);
      }
    }
  }, 120_000);

  it('lets each node itself reach the pods on the other nodes', async () => {
    const fromNode = (k: number, to: LabPod) => execFileSync('ip', ['netns', 'exec', lab.node(k), 'ping', '-c', '1', '-W', '2', to.endpoint.ipv4!], { encoding: 'utf8' });
    const send = async () => {
      for (const k of [1, 2, 3]) for (const to of pods.filter((p) => p.node !== k)) expect(fromNode(k, to)).toContain('1 received');
    };
    if (!overlay) return send();
    // Through the overlay's device, whose egress program keys or encapsulates them: VNI 1, the
    // sending node's host identity.
    const frames = await lab.capture(`udp port ${overlay.port}`, ['ip.src', overlay.vni], send, overlay.decode);
    const fromHosts = frames.filter(([src]) => /^172\.30\.0\.(\d+),172\.30\.0\.\1$/.test(src!));
    expect(fromHosts.length).toBeGreaterThanOrEqual(6);
    expect(new Set(fromHosts.map(([, vni]) => Number(vni)))).toEqual(new Set([1]));
  }, 60_000);

  it('carries UDP datagrams larger than the pod MTU (IPv4 fragments) between pods of different nodes, both ways', async () => {
    // 4000 bytes: three fragments each way, reassembled by the receiving pod.
    for (const [from, to] of [[frontend, backend], [backend, other], [other, frontend]] as const) {
      await expect.poll(() => lab.probe(from, to, 'UDP', 1500, 4000), { timeout: 10_000, message: `${from.name} → ${to.name}` }).toBe('ok');
    }
  }, 60_000);

  it('pods get the underlay MTU minus the encapsulation overhead', () => {
    const mtu = (p: LabPod) => Number(/mtu (\d+)/.exec(execFileSync('ip', ['-n', p.endpoint.netns.replace('/run/netns/', ''), 'link', 'show', 'eth0'], { encoding: 'utf8' }))?.[1]);
    expect(pods.map(mtu)).toEqual(pods.map(() => (overlay ? 1450 : 1500)));
  });

  it(`uses BIG TCP: 192 KiB GSO packets from pod veth to pod veth, whole across the underlay${overlay ? `, as ${routing} with the source identity and outer lengths 0` : ''}`, async () => {
    const size = 196_608;
    // An overlay keeps the egress device's GRO at 64 KiB (the kernel's UDP tunnel receive path).
    const egressGro = overlay ? 65_536 : size;
    for (const k of [1, 2, 3]) expect(await lab.gsoSizes(lab.node(k), 'eth0'), `node ${k} eth0`).toEqual({ gso: size, gro: egressGro });
    for (const p of pods) {
      expect(await lab.gsoSizes(lab.node(p.node), p.endpoint.hostInterface), `${p.name} host side`).toEqual({ gso: size, gro: size });
      expect(await lab.gsoSizes(p.endpoint.netns, 'eth0'), `${p.name} pod side`).toEqual({ gso: size, gro: size });
    }
    const sent = 64 * 1024 * 1024;
    let received = 0;
    const frames = await lab.captureFrames('greater 65000', async () => {
      received = await lab.bulk(frontend, backend, sent);
    });
    expect(received).toBe(sent);
    const big = frames.filter((f) => f.length > 65_536);
    expect(big.length).toBeGreaterThan(0);
    // Outer IPv4 and UDP lengths 0: 16 bits cannot say more (tshark calls such UDP malformed).
    if (overlay) for (const f of big) expect(tunnelHeaders(f)).toEqual({ ...tunnelled(), lengths: [0, 0] });
  }, 90_000);

  if (overlay) {
    it(`BIG TCP over ${routing} through an underlay device that cannot segment tunnel packets: the kernel cuts them to the MTU, real lengths in every frame`, async () => {
      const ethtool = (state: 'on' | 'off') => execFileSync('ip', ['netns', 'exec', lab.node(1), 'ethtool', '-K', 'eth0', 'tx-udp_tnl-segmentation', state]);
      const sent = 8 * 1024 * 1024;
      let received = 0;
      ethtool('off');
      let frames: string[][];
      try {
        frames = await lab.capture(`src host 172.30.0.1 and udp port ${overlay.port}`, ['frame.len', 'ip.len', 'udp.length', overlay.vni], async () => {
          received = await lab.bulk(frontend, backend, sent);
        }, overlay.decode);
      } finally {
        ethtool('on');
      }
      expect(received).toBe(sent);
      // A loaded capture drops some frames: what it kept must all be MTU-sized and whole.
      expect(frames.length).toBeGreaterThan(1000);
      for (const [len, ipLen, udpLen, vni] of frames) {
        const outer = Number(ipLen!.split(',')[0]);
        expect(Number(len)).toBeLessThanOrEqual(1514);
        expect({ outer, udp: Number(udpLen!.split(',')[0]), vni: Number(vni) }).toEqual({ outer: Number(len) - 14, udp: Number(len) - 34, vni: frontend.endpoint.identity });
      }
    }, 90_000);
  }

  if (overlay) {
    it(`carries the source pod’s identity in the VNI (tshark decodes the ${routing} frames on the underlay)`, async () => {
      const frames = await lab.capture(`udp port ${overlay.port}`, ['ip.src', 'ip.dst', 'udp.dstport', overlay.vni], async () => {
        expect(lab.ping(frontend, backend)).toBe(true);
        expect(lab.ping(other, frontend)).toBe(true);
      }, overlay.decode);
      // ip.src/ip.dst list the outer, then the inner address.
      const seen = frames.map(([src, dst, port, vni]) => ({ outer: `${src!.split(',')[0]} → ${dst!.split(',')[0]}`, inner: `${src!.split(',')[1]} → ${dst!.split(',')[1]}`, port, vni: Number(vni) }));
      const ip = (p: LabPod) => p.endpoint.ipv4;
      const node = (p: LabPod) => `172.30.0.${p.node}`;
      for (const [from, to] of [[frontend, backend], [backend, frontend], [other, frontend], [frontend, other]] as const) {
        expect(seen, `${from.name} → ${to.name}`).toContainEqual({ outer: `${node(from)} → ${node(to)}`, inner: `${ip(from)} → ${ip(to)}`, port: String(overlay.port), vni: from.endpoint.identity });
      }
      for (const s of seen) expect(s.vni, JSON.stringify(s)).toBe(pods.find((p) => p.endpoint.ipv4 === s.inner.split(' → ')[0])!.endpoint.identity);
    }, 60_000);
  } else {
    it('puts pod addresses on the underlay as they are (no encapsulation, no masquerading)', async () => {
      const frames = await lab.capture(`icmp and host ${backend.endpoint.ipv4}`, ['ip.src', 'ip.dst', 'eth.src'], async () => {
        expect(lab.ping(frontend, backend)).toBe(true);
      });
      const pairs = frames.map(([src, dst]) => `${src} → ${dst}`);
      expect(pairs).toContain(`${frontend.endpoint.ipv4} → ${backend.endpoint.ipv4}`);
      expect(pairs).toContain(`${backend.endpoint.ipv4} → ${frontend.endpoint.ipv4}`);
    }, 60_000);
  }

  it('holds a policy letting only app=frontend reach app=backend across nodes (allowed and denied pairs)', async () => {
    await lab.importPolicy(cnp(lab.k8sNamespace));
    // Denied once the backend's node realized the policy: judged there by the remote source's identity.
    await expect.poll(() => lab.probe(other, backend, 'TCP', 1000), { timeout: 20_000 }).toBe('timeout');
    expect(await lab.probe(other, backend, 'UDP', 1000)).toBe('timeout');
    expect(lab.ping(other, backend)).toBe(false);
    expect(await lab.probe(frontend, backend, 'TCP')).toBe('ok');
    expect(await lab.probe(frontend, backend, 'UDP')).toBe('ok');
    // Fragments too: the later ones judged by the first one's port at the backend's node.
    expect(await lab.probe(frontend, backend, 'UDP', 1500, 4000)).toBe('ok');
    expect(await lab.probe(other, backend, 'UDP', 1000, 4000)).toBe('timeout');
    expect(lab.ping(frontend, backend)).toBe(true);
    // Nothing selects the others: they still reach each other and the frontend.
    expect(await lab.probe(backend, other, 'TCP')).toBe('ok');
    expect(await lab.probe(other, frontend, 'TCP')).toBe('ok');
  }, 60_000);

  it('knows each other node’s pod CIDR as the world behind it: a pod not in the ipcache yet is still reached as the sender', async () => {
    for (const k of [1, 2, 3]) {
      const entries = await lab.ipcache(k);
      for (const j of [1, 2, 3].filter((j) => j !== k)) {
        expect(entries.find((e) => e.prefix === `10.200.${j}.0/24`)).toMatchObject({ identity: 2, tunnelEndpoint: `172.30.0.${j}`, node: lab.node(j) });
      }
      expect(entries.map((e) => e.prefix)).not.toContain(`10.200.${k}.0/24`);
    }
    // Node 1 without the backend's own entry: the frontend's packets cross with its own address
    // (not masqueraded to node 1's), and over an overlay with its own identity as the VNI.
    const frames = await lab.withoutLpmEntry(1, backend.endpoint.ipv4!, () =>
      overlay
        ? lab.capture(`udp port ${overlay.port}`, ['ip.src', 'ip.dst', overlay.vni], async () => void expect(lab.ping(frontend, backend)).toBe(true), overlay.decode)
        : lab.capture(`icmp and host ${backend.endpoint.ipv4}`, ['ip.src', 'ip.dst'], async () => void expect(lab.ping(frontend, backend)).toBe(true)),
    );
    const inner = (field: string) => field.split(',').at(-1);
    const requests = frames.filter(([, dst]) => inner(dst!) === backend.endpoint.ipv4);
    expect(requests.length).toBeGreaterThan(0);
    for (const [src, , vni] of requests) {
      expect(inner(src!)).toBe(frontend.endpoint.ipv4);
      if (overlay) expect(Number(vni)).toBe(frontend.endpoint.identity);
    }
    expect(lab.lpmPrefixes(1)).toContain(`${backend.endpoint.ipv4}/32`);
  }, 60_000);

  if (overlay) {
    it(`a pod’s BIG TCP packets the host stack routes into ${overlay.device} (destination not in the ipcache yet) arrive whole`, async () => {
      const sent = 16 * 1024 * 1024;
      let received = 0;
      // Without the backend's /32 and its node's pod CIDR, the forward slot leaves the frontend's
      // packets to the stack, whose route takes them into the overlay's device: the VXLAN
      // driver's (64 KiB at most), or Geneve's host device, whose eBPF takes BIG TCP's whole.
      const frames = await lab.withoutLpmEntry(1, backend.endpoint.ipv4!, () =>
        lab.withoutLpmEntry(1, '10.200.2.0/24', () =>
          lab.captureFrames(`src host 172.30.0.1 and udp port ${overlay.port}`, async () => {
            received = await lab.bulk(frontend, backend, sent);
          }),
        ),
      );
      expect(received).toBe(sent);
      const bulk = frames.filter((f) => f.length > 1514);
      expect(bulk.length).toBeGreaterThan(0);
      for (const f of bulk) expect(tunnelHeaders(f)).toEqual({ ...tunnelled(), lengths: outerLengths(f.length) });
    }, 90_000);
  }

  it('removes a node’s routes and its pods’ ipcache entries from the others when it leaves', async () => {
    const gone = `${other.endpoint.ipv4}/32`;
    for (const k of [1, 2]) {
      expect((await lab.ipcache(k)).map((e) => e.prefix)).toContain(gone);
      expect(lab.lpmPrefixes(k)).toEqual(expect.arrayContaining([gone, '10.200.3.0/24']));
    }
    const down = await lab.lab('node-down', '--node', '3');
    expect(down.code, down.stdout + down.stderr).toBe(0);
    for (const k of [1, 2]) {
      await expect.poll(() => lab.nodeRoutes(k).filter((r) => r.startsWith('10.200.3.')), { timeout: 20_000 }).toEqual([]);
      await expect.poll(async () => (await lab.ipcache(k)).filter((e) => e.node === lab.node(3)), { timeout: 20_000 }).toEqual([]);
      expect(lab.lpmPrefixes(k)).not.toContain(gone);
      expect(lab.lpmPrefixes(k)).not.toContain('10.200.3.0/24');
    }
    // The two nodes left still reach each other's pods.
    expect(await lab.probe(frontend, backend, 'TCP')).toBe('ok');
    expect(await lab.probe(backend, frontend, 'UDP')).toBe('ok');
  }, 60_000);

  it('gives a node that joins again its routes on the others, and its pods are reachable again', async () => {
    const up = await lab.lab('node-up', '--node', '3');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const via = `10.200.3.0/24 via 172.30.0.3 dev ${overlay?.device ?? 'eth0'}`;
    for (const k of [1, 2]) await expect.poll(() => lab.nodeRoutes(k).filter((r) => r.startsWith('10.200.3.')), { timeout: 20_000 }).toEqual([via]);
    await expect.poll(() => lab.probe(frontend, other, 'TCP'), { timeout: 20_000 }).toBe('ok');
    expect(await lab.probe(other, frontend, 'UDP')).toBe('ok');
    expect(lab.ping(backend, other)).toBe(true);
  }, 90_000);

  it('a restarted agent removes the routes it had towards nodes that left while it was away', async () => {
    expect((await lab.lab('node-down', '--node', '1')).code).toBe(0);
    // As if node 9 had been in the cluster and left while node 1's agent was down.
    execFileSync('ip', ['-n', lab.node(1), 'route', 'add', '10.200.9.0/24', 'via', '172.30.0.9', 'dev', 'eth0', 'proto', '200']);
    const up = await lab.lab('node-up', '--node', '1');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    await expect.poll(() => lab.nodeRoutes(1).filter((r) => r.startsWith('10.200.9.')), { timeout: 20_000 }).toEqual([]);
    expect(lab.nodeRoutes(1).map((r) => r.split(' ')[0])).toEqual(['10.200.2.0/24', '10.200.3.0/24']);
    // Its pod was adopted: still reachable, and still the only one the backend admits.
    await expect.poll(() => lab.probe(frontend, backend, 'TCP'), { timeout: 20_000 }).toBe('ok');
    expect(await lab.probe(backend, frontend, 'TCP')).toBe('ok');
    expect(await lab.probe(other, backend, 'TCP', 1000)).toBe('timeout');
  }, 90_000);

  if (routing === 'native') {
    it('turned off (datapath.bigTcp: false), sets the egress device and the adopted pod’s veth back to 64 KiB at restart; traffic flows on', async () => {
      const file = lab.agentConfig(1);
      const config = JSON.parse(readFileSync(file, 'utf8')) as { datapath: Record<string, unknown> };
      writeFileSync(file, JSON.stringify({ ...config, datapath: { ...config.datapath, bigTcp: false } }));
      try {
        expect((await lab.lab('node-down', '--node', '1')).code).toBe(0);
        const up = await lab.lab('node-up', '--node', '1');
        expect(up.code, up.stdout + up.stderr).toBe(0);
        expect(await lab.gsoSizes(lab.node(1), 'eth0')).toEqual({ gso: 65_536, gro: 65_536 });
        // The adopted pod's veth follows, both sides.
        expect(await lab.gsoSizes(lab.node(1), frontend.endpoint.hostInterface)).toEqual({ gso: 65_536, gro: 65_536 });
        expect(await lab.gsoSizes(frontend.endpoint.netns, 'eth0')).toEqual({ gso: 65_536, gro: 65_536 });
        await expect.poll(() => lab.probe(frontend, backend, 'TCP'), { timeout: 20_000 }).toBe('ok');
        expect(await lab.bulk(frontend, backend, 8 * 1024 * 1024)).toBe(8 * 1024 * 1024);
      } finally {
        writeFileSync(file, JSON.stringify(config));
      }
    }, 90_000);

    it('drops the routes of a node whose agent died, once its lease expires', async () => {
      const status = JSON.parse((await lab.lab('status', '-o', 'json')).stdout) as { nodes: { name: string; pid: number }[] };
      process.kill(status.nodes.find((n) => n.name === lab.node(3))!.pid, 'SIGKILL');
      // The lab's lease TTL is 10 s: nothing revokes it, it expires.
      for (const k of [1, 2]) {
        await expect.poll(() => lab.nodeRoutes(k).filter((r) => r.startsWith('10.200.3.')), { timeout: 40_000, interval: 500 }).toEqual([]);
        await expect.poll(async () => (await lab.ipcache(k)).filter((e) => e.node === lab.node(3)), { timeout: 10_000 }).toEqual([]);
      }
    }, 90_000);
  }
});
