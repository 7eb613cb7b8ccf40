// Masquerading on the native device (bpf/host.c, bpf/lib/nat.h): pod → outside leaves with
// the node's address and a port from the NAT range; the reply is translated back and
// delivered straight to the pod.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingBufferConsumer, type BpfProgram } from '@cilia/bpf';
import { checksum, packet, parsePacket, TCP_FLAGS, TC_ACT } from '@cilia/bpf/testing';
import { ReservedIdentity } from '@cilia/core';
import {
  AttachPointIndex,
  CTX_FLAGS,
  CtState,
  CtStatus,
  Direction,
  DropReason,
  EventType,
  gcExpired,
  PacketEvent,
  TracePoint,
  type PacketEventRecord,
} from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

const NODE_IP = '192.168.77.1';
const NODE_IP_HOST_ORDER = 0xc0a84d01;
const PORT_MIN = 62000;
const PORT_MAX = 62007;

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let fromContainer: BpfProgram;
let toNetdev: BpfProgram;
let fromNetdev: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let netdev: number;
let consumer: RingBufferConsumer | undefined;
const events: PacketEventRecord[] = [];

beforeAll(() => {
  links = dummyLinks(2);
  try {
    dp = loadDatapath({ SNAT_IPV4: NODE_IP_HOST_ORDER, NAT_PORT_MIN: PORT_MIN, NAT_PORT_MAX: PORT_MAX });
  } catch (err) {
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  fromContainer = dp.lxc.program('cil_from_container');
  toNetdev = dp.host.program('cil_to_netdev');
  fromNetdev = dp.host.program('cil_from_netdev');
  const [ifA = 0, ifNet = 0] = links.ifindexes;
  netdev = ifNet;
  a = testEndpoint('10.202.0.10', 31, ifA, 3001);
  maps.endpoints.update(a.ip, a.info);
  maps.ipcache.update(`${NODE_IP}/32`, { identity: ReservedIdentity.host, tunnelEndpoint: '0.0.0.0', flags: 0 });
  maps.ipcache.update('10.202.0.0/16', { identity: 4000, tunnelEndpoint: '0.0.0.0', flags: 0 });
  consumer = new RingBufferConsumer(dp.host.map('cilia_events'), {
    onBatch: (batch) => events.push(...batch.decode(PacketEvent)),
  });
});
afterAll(() => {
  consumer?.close();
  dp?.dispose();
  links?.remove();
});

const out = (dst: string, sport: number, dport: number, flags: number = TCP_FLAGS.SYN): Buffer =>
  packet().eth().ipv4({ src: a.ip, dst }).tcp({ sport, dport, flags }).payload('req').build();

describe('masquerading pod → outside', () => {
  it('rewrites the source to the node and a NAT port, and translates the reply back to the pod', async () => {
    // The pod's SYN goes through from-container (conntrack, to the stack) ...
    expect(run(fromContainer, out('1.1.1.1', 43000, 443), a.info.hostIfindex).retval).toBe(TC_ACT.OK);
    // ... and leaves through the native device.
    const r = run(toNetdev, out('1.1.1.1', 43000, 443), netdev);
    expect(r.retval).toBe(TC_ACT.OK);
    const sent = parsePacket(r.data as Buffer);
    expect(sent.ipv4).toMatchObject({ src: NODE_IP, dst: '1.1.1.1', checksumOk: true });
    expect(sent.tcp).toMatchObject({ dport: 443, checksumOk: true });
    const natPort = sent.tcp?.sport ?? 0;
    expect(natPort).toBeGreaterThanOrEqual(PORT_MIN);
    expect(natPort).toBeLessThanOrEqual(PORT_MAX);
    expect(sent.payload.toString()).toBe('req');

    const egressKey = { saddr: a.ip, daddr: '1.1.1.1', sport: 43000, dport: 443, proto: 6, dir: Direction.egress };
    expect(maps.snat.lookup(egressKey)).toMatchObject({ addr: NODE_IP, port: natPort });
    const ingressKey = { saddr: '1.1.1.1', daddr: NODE_IP, sport: 443, dport: natPort, proto: 6, dir: Direction.ingress };
    expect(maps.snat.lookup(ingressKey)).toMatchObject({ addr: a.ip, port: 43000 });

    // The next packet of the flow keeps its port.
    const again = parsePacket(run(toNetdev, out('1.1.1.1', 43000, 443, TCP_FLAGS.ACK), netdev).data as Buffer);
    expect(again.tcp?.sport).toBe(natPort);
    // One trace for the masqueraded flow (its first packet), with the pod's tuple.
    await new Promise((r) => setTimeout(r, 50));
    const traces = events.filter((e) => e.hdr.type === EventType.trace && e.hdr.subtype === TracePoint.toNetwork);
    expect(traces).toHaveLength(1);
    expect(traces[0]).toMatchObject({ saddr: a.ip, sport: 43000, daddr: '1.1.1.1', ctStatus: CtStatus.established });

    // The SYN-ACK arrives for the node: back to the pod, straight into its netns.
    const reply = packet()
      .eth({ src: '02:aa:00:00:00:01', dst: '02:aa:00:00:00:02' })
      .ipv4({ src: '1.1.1.1', dst: NODE_IP })
      .tcp({ sport: 443, dport: natPort, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK })
      .payload('resp')
      .build();
    const back = run(fromNetdev, reply, netdev);
    expect(back.retval).toBe(TC_ACT.REDIRECT);
    // ... through the endpoint's to-container pipeline (its slots), like local delivery.
    expect(back.context).toMatchObject({
      targetIfindex: a.info.hostIfindex,
      endpointId: a.info.endpointId,
      attachPoint: AttachPointIndex['to-container'],
    });
    expect(back.context.flags & (CTX_FLAGS.redirected | CTX_FLAGS.snated)).toBe(CTX_FLAGS.redirected | CTX_FLAGS.snated);
    expect(back.context.ctStatus).toBe(CtStatus.reply);
    const delivered = parsePacket(back.data as Buffer);
    expect(delivered.eth).toMatchObject({ dst: a.info.mac, src: a.info.hostMac });
    expect(delivered.ipv4).toMatchObject({ src: '1.1.1.1', dst: a.ip, ttl: 63, checksumOk: true });
    expect(delivered.tcp).toMatchObject({ sport: 443, dport: 43000, checksumOk: true });
    expect(delivered.payload.toString()).toBe('resp');
    expect(maps.ct.lookup({ saddr: a.ip, daddr: '1.1.1.1', sport: 43000, dport: 443, proto: 6, flags: 0 })?.state).toBe(
      CtState.synRecv,
    );
  });

  it('masquerades UDP (checksum kept valid) and ICMP echo (identifier translated)', () => {
    const udp = packet().eth().ipv4({ src: a.ip, dst: '9.9.9.9' }).udp({ sport: 5000, dport: 53 }).payload('dns').build();
    const u = parsePacket(run(toNetdev, udp, netdev).data as Buffer);
    expect(u.ipv4).toMatchObject({ src: NODE_IP, checksumOk: true });
    expect(u.udp?.checksumOk).toBe(true);
    const udpReply = packet()
      .eth()
      .ipv4({ src: '9.9.9.9', dst: NODE_IP })
      .udp({ sport: 53, dport: u.udp?.sport ?? 0 })
      .payload('ans')
      .build();
    const ur = parsePacket(run(fromNetdev, udpReply, netdev).data as Buffer);
    expect(ur.ipv4).toMatchObject({ dst: a.ip, checksumOk: true });
    expect(ur.udp).toMatchObject({ dport: 5000, checksumOk: true });

    const ping = packet().eth().ipv4({ src: a.ip, dst: '9.9.9.9' }).icmp({ type: 8, id: 7, seq: 1 }).payload('p').build();
    const p = parsePacket(run(toNetdev, ping, netdev).data as Buffer);
    expect(p.ipv4).toMatchObject({ src: NODE_IP, checksumOk: true });
    expect(p.icmp?.checksumOk).toBe(true);
    const natId = p.icmp?.id ?? 0;
    expect(natId).toBeGreaterThanOrEqual(PORT_MIN);
    const pong = packet()
      .eth()
      .ipv4({ src: '9.9.9.9', dst: NODE_IP })
      .icmp({ type: 0, id: natId, seq: 1 })
      .payload('p')
      .build();
    const back = run(fromNetdev, pong, netdev);
    expect(back.retval).toBe(TC_ACT.REDIRECT);
    expect(parsePacket(back.data as Buffer).icmp).toMatchObject({ type: 0, id: 7, checksumOk: true });
  });

  it('leaves cluster destinations, the host itself and unrelated replies alone', () => {
    const toCluster = out('10.202.9.9', 43001, 80);
    expect(run(toNetdev, toCluster, netdev).data).toEqual(toCluster);
    const hostOwn = packet().eth().ipv4({ src: NODE_IP, dst: '1.1.1.1' }).tcp({ sport: 33000, dport: 443 }).build();
    expect(run(toNetdev, hostOwn, netdev).data).toEqual(hostOwn);
    const forHost = packet().eth().ipv4({ src: '1.1.1.1', dst: NODE_IP }).tcp({ sport: 443, dport: 33000 }).build();
    const r = run(fromNetdev, forHost, netdev);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.data).toEqual(forHost);
  });

  it('masquerades toward a CIDR a policy names, never toward what lies behind another node', () => {
    // A policy's CIDR (a local identity) is still outside the cluster.
    maps.ipcache.update('203.0.113.0/24', { identity: (1 << 24) + 7, tunnelEndpoint: '0.0.0.0', flags: 0 });
    const toPolicyCidr = parsePacket(run(toNetdev, out('203.0.113.5', 43010, 443), netdev).data as Buffer);
    expect(toPolicyCidr.ipv4?.src).toBe(NODE_IP);
    // Another node's pod CIDR (identity world until the pod's own entry arrives) and one of its
    // pods: both carry the node as tunnel endpoint, and both keep the pod's address.
    maps.ipcache.update('10.210.2.0/24', { identity: ReservedIdentity.world, tunnelEndpoint: '192.168.77.2', flags: 0 });
    maps.ipcache.update('10.210.2.7/32', { identity: 4100, tunnelEndpoint: '192.168.77.2', flags: 0 });
    for (const [dst, sport] of [['10.210.2.9', 43011], ['10.210.2.7', 43012]] as const) {
      const packetOut = out(dst, sport, 80);
      expect(run(fromContainer, packetOut, a.info.hostIfindex).retval).toBe(TC_ACT.OK);
      expect(run(toNetdev, packetOut, netdev).data).toEqual(packetOut);
      expect(maps.snat.lookup({ saddr: a.ip, daddr: dst, sport, dport: 80, proto: 6, dir: Direction.egress })).toBeUndefined();
    }
    // Without the tunnel endpoint the same unknown address is the world: masqueraded.
    maps.ipcache.delete('10.210.2.0/24');
    const toWorld = parsePacket(run(toNetdev, out('10.210.2.9', 43013, 80), netdev).data as Buffer);
    expect(toWorld.ipv4?.src).toBe(NODE_IP);
  });

  it('translates an ICMP error about a masqueraded flow (path MTU) back to the pod', () => {
    const sent = parsePacket(run(toNetdev, out('2.2.2.2', 43100, 443), netdev).data as Buffer);
    const natPort = sent.tcp?.sport ?? 0;
    // A router says "fragmentation needed", quoting the IPv4 header + 8 bytes it got.
    const quoted = packet()
      .eth()
      .ipv4({ src: NODE_IP, dst: '2.2.2.2' })
      .tcp({ sport: natPort, dport: 443 })
      .build()
      .subarray(14, 14 + 28);
    const error = packet()
      .eth()
      .ipv4({ src: '192.0.2.1', dst: NODE_IP })
      .icmp({ type: 3, code: 4, id: 0, seq: 1400 })
      .payload(quoted)
      .build();
    const r = run(fromNetdev, error, netdev);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    const got = parsePacket(r.data as Buffer);
    expect(got.ipv4).toMatchObject({ src: '192.0.2.1', dst: a.ip, checksumOk: true });
    expect(got.icmp).toMatchObject({ type: 3, code: 4, seq: 1400, checksumOk: true });
    const inner = got.payload;
    expect(inner.subarray(12, 16)).toEqual(Buffer.from([10, 202, 0, 10])); // quoted source: the pod
    expect(checksum(inner.subarray(0, 20))).toBe(0); // quoted header checksum still valid
    expect(inner.readUInt16BE(20)).toBe(43100); // quoted source port: the pod's
    expect(inner.readUInt16BE(22)).toBe(443);
    // An error about no masqueraded flow is the host's business.
    const otherPort = quoted.map((x, i) => (i === 20 ? x ^ 1 : x));
    const stray = packet().eth().ipv4({ src: '192.0.2.1', dst: NODE_IP }).icmp({ type: 3, code: 4 }).payload(otherPort).build();
    const s = run(fromNetdev, Buffer.from(stray), netdev);
    expect(s.retval).toBe(TC_ACT.OK);
  });

  it('does not masquerade a pod\'s answers to connections that came in to its own address', () => {
    const inbound = packet()
      .eth()
      .ipv4({ src: '5.5.5.5', dst: a.ip })
      .tcp({ sport: 50500, dport: 22, flags: TCP_FLAGS.SYN })
      .build();
    const delivered = run(fromNetdev, inbound, netdev);
    expect(delivered.retval).toBe(TC_ACT.REDIRECT);
    expect(delivered.context.ctStatus).toBe(CtStatus.new);
    const answer = out('5.5.5.5', 22, 50500, TCP_FLAGS.SYN | TCP_FLAGS.ACK);
    const r = run(toNetdev, answer, netdev);
    expect(r.retval).toBe(TC_ACT.OK);
    expect(r.data).toEqual(answer);
    const egressKey = { saddr: a.ip, daddr: '5.5.5.5', sport: 22, dport: 50500, proto: 6, dir: Direction.egress };
    expect(maps.snat.lookup(egressKey)).toBeUndefined();
  });

  it('runs out of ports with a counted drop once the range is taken for one remote', () => {
    expect(gcExpired(maps.snat)).toBe(0); // nothing has expired yet
    const drops = metricPackets(maps.metrics, DropReason.natNoPort, Direction.egress);
    const ports = PORT_MAX - PORT_MIN + 1;
    const verdicts: number[] = [];
    for (let i = 0; i < ports + 2; i++) verdicts.push(run(toNetdev, out('8.8.4.4', 44000 + i, 80), netdev).retval);
    // 8 ports: 8 flows get one, the 9th and 10th are dropped.
    expect(verdicts.slice(0, ports)).toEqual(new Array(ports).fill(TC_ACT.OK));
    expect(verdicts.slice(ports)).toEqual([TC_ACT.SHOT, TC_ACT.SHOT]);
    expect(metricPackets(maps.metrics, DropReason.natNoPort, Direction.egress)).toBe(drops + 2);
    // Another remote has all the ports to itself.
    expect(run(toNetdev, out('8.8.8.8', 44000, 80), netdev).retval).toBe(TC_ACT.OK);
  });

  it('expired entries free their port: the datapath reuses it, user-space GC deletes them', () => {
    const now = process.hrtime.bigint();
    let expired = 0;
    for (const [key, value] of maps.snat.entries()) {
      if (key.daddr === '8.8.4.4' || key.saddr === '8.8.4.4') {
        maps.snat.update(key, { ...value, expiresNs: now - 1n });
        expired++;
      }
    }
    expect(expired).toBe(16); // 8 flows × (egress + ingress entry)
    expect(run(toNetdev, out('8.8.4.4', 45000, 80), netdev).retval).toBe(TC_ACT.OK);
    expect(gcExpired(maps.snat)).toBe(15); // one ingress entry was overwritten by the new flow
  });
});
