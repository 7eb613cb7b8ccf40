// The policy slot program (bpf/policy.c, bpf/lib/policy.h) in the base pipeline, through
// BPF_PROG_TEST_RUN: entries written with the PolicyMap writer, a packet in, then the
// verdict, the context left in skb->cb, conntrack and the policy verdict records out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject, codec, RingBufferConsumer, type BpfProgram } from '@cilia/bpf';
import { packet, skbContext, TCP_FLAGS, TC_ACT } from '@cilia/bpf/testing';
import type { Logger, PolicyEntry, PolicyKey } from '@cilia/core';
import {
  AttachPointIndex,
  Direction,
  DropReason,
  EventType,
  PolicyEndpointValue,
  PolicyMapKey,
  PolicyMapValue,
  PolicyMatch,
  PolicyVerdict,
  PolicyVerdictEvent,
  ProxyMark,
  fromProxyMark,
  slotIndex,
  type PolicyVerdictRecord,
} from '../../src/maps/index.js';
import { PolicyMap } from '../../src/policy/map.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint, type TestEndpoint } from './fixtures.js';
import { loadDatapath, objectPath, type Datapath } from './objects.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };
const allow: PolicyEntry = { verdict: 'allow', proxyPort: 0, derivedFrom: ['allow-rule'] };
const deny: PolicyEntry = { verdict: 'deny', proxyPort: 0, derivedFrom: ['deny-rule'] };
const ingressOnly = { ingress: true, egress: false };
const WORLD_IP = '10.99.1.1';
const WORLD_IDENTITY = 7777;

/** lxc.o + host.o + policy.o (with `constants`) sharing one pin root, cil_policy in both slots. */
function loadWithPolicy(constants: Record<string, number> = {}): { dp: Datapath; policy: BpfObject; writer(quota?: number): PolicyMap } {
  const dp = loadDatapath();
  const policy = BpfObject.open(objectPath('policy'), { pinRoot: dp.pinRoot, constants });
  try {
    policy.load();
    const slots = policy.programArray('cilia_tc_slots');
    for (const ap of ['from-container', 'to-container'] as const) slots.set(slotIndex(ap, 'policy'), policy.program('cil_policy'));
  } catch (err) {
    policy.close();
    dp.dispose();
    throw err;
  }
  const writer = (quota?: number): PolicyMap =>
    new PolicyMap({
      policy: policy.map('cilia_policy', { key: PolicyMapKey, value: PolicyMapValue }),
      endpoints: policy.map('cilia_policy_endpoints', { key: codec.u32, value: PolicyEndpointValue }),
      maxEntriesPerEndpoint: quota,
      logger: silent,
    });
  return { dp: { ...dp, dispose: () => (policy.close(), dp.dispose()) }, policy, writer };
}

const key = (k: Partial<PolicyKey>): PolicyKey => ({ identity: 0, direction: 'ingress', protocol: 6, port: 0, endPort: 0, ...k });

const tcp = (from: string, to: string, sport: number, dport: number, flags: number = TCP_FLAGS.SYN): Buffer =>
  packet().eth().ipv4({ src: from, dst: to }).tcp({ sport, dport, flags }).build();

describe('policy slot (POLICY_DEFAULT_DENY = 0)', () => {
  let links: ReturnType<typeof dummyLinks>;
  let dp: Datapath;
  let maps: ReturnType<typeof datapathMaps>;
  let writer: PolicyMap;
  let fromContainer: BpfProgram;
  let toContainer: BpfProgram;
  let consumer: RingBufferConsumer;
  const verdicts: PolicyVerdictRecord[] = [];
  let a: TestEndpoint;
  let b: TestEndpoint;
  let c: TestEndpoint;

  beforeAll(() => {
    links = dummyLinks(3);
    try {
      const loaded = loadWithPolicy();
      dp = loaded.dp;
      writer = loaded.writer(8);
    } catch (err) {
      links.remove();
      throw err;
    }
    maps = datapathMaps(dp);
    fromContainer = dp.lxc.program('cil_from_container');
    toContainer = dp.lxc.program('cil_to_container');
    const [ifA = 0, ifB = 0, ifC = 0] = links.ifindexes;
    a = testEndpoint('10.205.0.10', 71, ifA, 7001);
    b = testEndpoint('10.205.0.20', 72, ifB, 7002);
    c = testEndpoint('10.205.0.30', 73, ifC, 7003);
    for (const ep of [a, b, c]) maps.endpoints.update(ep.ip, ep.info);
    maps.ipcache.update('10.99.0.0/16', { identity: WORLD_IDENTITY, tunnelEndpoint: '0.0.0.0', flags: 0 });
    consumer = new RingBufferConsumer(dp.lxc.map('cilia_events'), {
      onBatch: (batch) =>
        batch.forEach((buf, offset, length) => {
          if (buf[offset] === EventType.policyVerdict && length >= PolicyVerdictEvent.size) verdicts.push(PolicyVerdictEvent.decode(buf, offset));
        }),
    });
  });
  afterAll(() => {
    consumer?.close();
    dp?.dispose();
    links?.remove();
  });

  /** A → `to` from A's veth (egress of A, then ingress of the destination). */
  const fromA = (to: TestEndpoint | string, sport: number, dport: number, flags?: number): ReturnType<typeof run> =>
    run(fromContainer, tcp(a.ip, typeof to === 'string' ? to : to.ip, sport, dport, flags), a.info.hostIfindex);

  async function verdictFor(sport: number): Promise<PolicyVerdictRecord> {
    for (let i = 0; i < 200; i++) {
      const hit = verdicts.find((v) => v.sport === sport);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no policy verdict for sport ${sport} among ${verdicts.length}`);
  }

  it('allows by peer identity and port; another port or peer is dropped as POLICY_DENIED', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow]], ingressOnly, 1);
    const denied = metricPackets(maps.metrics, DropReason.policyDenied, Direction.ingress);
    expect(fromA(b, 42000, 80).retval).toBe(TC_ACT.REDIRECT);
    const r = fromA(b, 42001, 81);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context).toMatchObject({ dropReason: DropReason.policyDenied, attachPoint: AttachPointIndex['to-container'], endpointId: b.info.endpointId });
    expect(run(fromContainer, tcp(c.ip, b.ip, 42002, 80), c.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
    expect(metricPackets(maps.metrics, DropReason.policyDenied, Direction.ingress)).toBe(denied + 2);
  });

  it('an allow with a proxy port marks every TCP packet of the connection TO_PROXY with the port; the proxy\'s own upstream (FROM_PROXY) is judged as its original source and never marked', () => {
    const proxied: PolicyEntry = { verdict: 'allow', proxyPort: 15001, derivedFrom: ['l7-rule'] };
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 8080 }), proxied]], ingressOnly, 1);
    const markOf = (r: { ctx: Buffer | undefined }) => r.ctx!.readUInt32LE(8);
    const toProxy = ((15001 << 16) | ProxyMark.toProxy) >>> 0;
    const syn = fromA(b, 42100, 8080);
    expect(syn.retval).toBe(TC_ACT.REDIRECT); // no l7-redirect program in this test: delivered, marked
    expect(markOf(syn)).toBe(toProxy);
    expect(markOf(fromA(b, 42100, 8080, TCP_FLAGS.ACK))).toBe(toProxy);
    // The proxy's upstream from the node: allowed as a's (its mark), its mark kept.
    const upstream = (mark: number) => toContainer.testRun({ data: tcp(WORLD_IP, b.ip, 42101, 8080), ctx: skbContext({ ifindex: b.info.hostIfindex, mark }) });
    const fromProxy = fromProxyMark(a.info.identity);
    const up = upstream(fromProxy);
    expect(up.retval).toBe(TC_ACT.OK);
    expect(markOf(up)).toBe(fromProxy);
    expect(upstream(0).retval).toBe(TC_ACT.SHOT); // the same packet as world's is denied
  });

  it('identity 0 (L4-only) matches every peer, local or from outside', () => {
    writer.sync(b.info.endpointId, [[key({ identity: 0, port: 443 }), allow]], ingressOnly, 2);
    expect(fromA(b, 42010, 443).retval).toBe(TC_ACT.REDIRECT);
    expect(run(toContainer, tcp(WORLD_IP, b.ip, 42011, 443), b.info.hostIfindex).retval).toBe(TC_ACT.OK);
    const r = run(toContainer, tcp(WORLD_IP, b.ip, 42012, 444), b.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context.dropReason).toBe(DropReason.policyDenied);
  });

  it('a port range matches from its first to its last port, not one beyond', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 1000, endPort: 1999 }), allow]], ingressOnly, 3);
    expect(fromA(b, 42020, 999).retval).toBe(TC_ACT.SHOT);
    expect(fromA(b, 42021, 1000).retval).toBe(TC_ACT.REDIRECT);
    expect(fromA(b, 42022, 1999).retval).toBe(TC_ACT.REDIRECT);
    expect(fromA(b, 42023, 2000).retval).toBe(TC_ACT.SHOT);
  });

  it('deny beats allow: a broader deny of the same peer, and a wildcard-peer deny of the port', () => {
    writer.sync(
      b.info.endpointId,
      [
        [key({ identity: a.info.identity, port: 8080 }), allow],
        [key({ identity: a.info.identity, port: 0 }), deny],
        [key({ identity: c.info.identity, port: 9090 }), allow],
        [key({ identity: c.info.identity, port: 9091 }), allow],
        [key({ identity: 0, port: 9090 }), deny],
      ],
      ingressOnly,
      4,
    );
    const r = fromA(b, 42030, 8080);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context.dropReason).toBe(DropReason.policyDeny);
    const fromC = (sport: number, dport: number): ReturnType<typeof run> => run(fromContainer, tcp(c.ip, b.ip, sport, dport), c.info.hostIfindex);
    expect(fromC(42031, 9090).context.dropReason).toBe(DropReason.policyDeny);
    expect(fromC(42032, 9091).retval).toBe(TC_ACT.REDIRECT);
  });

  it('matches ICMP by type', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, protocol: 1, port: 8 }), allow]], ingressOnly, 5);
    const icmp = (type: number, id: number): Buffer => packet().eth().ipv4({ src: a.ip, dst: b.ip }).icmp({ type, id }).build();
    expect(run(fromContainer, icmp(8, 500), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
    const r = run(fromContainer, icmp(13, 501), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context.dropReason).toBe(DropReason.policyDenied);
  });

  it('matches SCTP by destination port', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, protocol: 132, port: 3868 }), allow]], ingressOnly, 6);
    // SCTP's ports lead its header as UDP's do: a UDP frame relabelled as protocol 132.
    const sctp = (dport: number): Buffer => {
      const frame = Buffer.from(packet().eth().ipv4({ src: a.ip, dst: b.ip }).udp({ sport: 3868, dport }).build());
      frame[14 + 9] = 132;
      return frame;
    };
    expect(run(fromContainer, sctp(3868), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
    expect(run(fromContainer, sctp(3869), a.info.hostIfindex).retval).toBe(TC_ACT.SHOT);
  });

  it('replies pass an enforced direction; a new connection that way is dropped', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow]], { ingress: true, egress: true }, 7);
    expect(fromA(b, 42040, 80).retval).toBe(TC_ACT.REDIRECT);
    const reply = run(fromContainer, tcp(b.ip, a.ip, 80, 42040, TCP_FLAGS.SYN | TCP_FLAGS.ACK), b.info.hostIfindex);
    expect(reply.retval).toBe(TC_ACT.REDIRECT);
    const fresh = run(fromContainer, tcp(b.ip, a.ip, 42041, 22), b.info.hostIfindex);
    expect(fresh.retval).toBe(TC_ACT.SHOT);
    expect(fresh.context).toMatchObject({ dropReason: DropReason.policyDenied, attachPoint: AttachPointIndex['from-container'], endpointId: b.info.endpointId });
  });

  it('egress: the destination identity is the peer', () => {
    writer.sync(a.info.endpointId, [[key({ identity: WORLD_IDENTITY, direction: 'egress', protocol: 17, port: 53 }), allow]], { ingress: false, egress: true }, 8);
    try {
      const udp = (dst: string, sport: number): Buffer => packet().eth().ipv4({ src: a.ip, dst }).udp({ sport, dport: 53 }).build();
      expect(run(fromContainer, udp(WORLD_IP, 42050), a.info.hostIfindex).retval).toBe(TC_ACT.OK);
      const r = run(fromContainer, udp('8.8.8.8', 42051), a.info.hostIfindex);
      expect(r.retval).toBe(TC_ACT.SHOT);
      expect(r.context).toMatchObject({ dropReason: DropReason.policyDenied, attachPoint: AttachPointIndex['from-container'] });
    } finally {
      writer.remove(a.info.endpointId);
    }
  });

  it('a denied new connection leaves no conntrack entry; an allowed one does', () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow]], ingressOnly, 9);
    const ct = (sport: number, dport: number) => maps.ct.lookup({ saddr: a.ip, daddr: b.ip, sport, dport, proto: 6, flags: 0 });
    expect(fromA(b, 42060, 80).retval).toBe(TC_ACT.REDIRECT);
    expect(ct(42060, 80)).toBeDefined();
    expect(fromA(b, 42061, 81).retval).toBe(TC_ACT.SHOT);
    expect(ct(42061, 81)).toBeUndefined();
  });

  it('reports a verdict for the first packet of a connection in an enforced direction', async () => {
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow], [key({ identity: 0, port: 0, protocol: 17 }), allow]], ingressOnly, 10);
    expect(fromA(b, 42070, 80).retval).toBe(TC_ACT.REDIRECT);
    expect(fromA(b, 42070, 80, TCP_FLAGS.ACK).retval).toBe(TC_ACT.REDIRECT);
    expect(fromA(b, 42071, 81).retval).toBe(TC_ACT.SHOT);
    expect(run(fromContainer, packet().eth().ipv4({ src: a.ip, dst: b.ip }).udp({ sport: 42072, dport: 5000 }).build(), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
    const allowed = await verdictFor(42070);
    expect(allowed).toMatchObject({
      saddr: a.ip,
      daddr: b.ip,
      dport: 80,
      proto: 6,
      direction: Direction.ingress,
      matchType: PolicyMatch.l3L4,
      dropReason: 0,
      endpointId: b.info.endpointId,
      remoteIdentity: a.info.identity,
      proxyPort: 0,
    });
    expect(allowed.hdr).toMatchObject({ type: EventType.policyVerdict, subtype: PolicyVerdict.allowed, source: AttachPointIndex['to-container'] });
    const denied = await verdictFor(42071);
    expect(denied).toMatchObject({ dport: 81, matchType: PolicyMatch.none, dropReason: DropReason.policyDenied });
    expect(denied.hdr.subtype).toBe(PolicyVerdict.denied);
    expect(await verdictFor(42072)).toMatchObject({ proto: 17, matchType: PolicyMatch.all });
    // Only the first packet of 42070 (A's egress is not enforced: no verdict from there).
    await new Promise((r) => setTimeout(r, 50));
    expect(verdicts.filter((v) => v.sport === 42070)).toHaveLength(1);
  });

  it('allow-all (not enforced) and an endpoint without a record pass everything', () => {
    writer.sync(b.info.endpointId, [], { ingress: false, egress: false }, 11);
    expect(fromA(b, 42080, 12345).retval).toBe(TC_ACT.REDIRECT);
    expect(writer.dump(c.info.endpointId)).toBeUndefined();
    expect(fromA(c, 42081, 12345).retval).toBe(TC_ACT.REDIRECT);
  });

  it('a direction only deny rules without default deny enforce (the engine adds an allow-all): the deny drops, the rest passes', () => {
    // What the policy engine resolves for a CNP ingressDeny with enableDefaultDeny {ingress: false}.
    const derived = (from: string): PolicyEntry => ({ verdict: 'allow', proxyPort: 0, derivedFrom: [from] });
    writer.sync(
      b.info.endpointId,
      [
        [key({ identity: 0, protocol: 0 }), derived('allow-all (no default deny)')],
        [key({ identity: 1, protocol: 0 }), derived('allow-localhost')],
        [key({ identity: a.info.identity, port: 22 }), deny],
      ],
      ingressOnly,
      14,
    );
    const r = fromA(b, 42085, 22);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context.dropReason).toBe(DropReason.policyDeny);
    expect(fromA(b, 42086, 80).retval).toBe(TC_ACT.REDIRECT);
    expect(run(fromContainer, tcp(c.ip, b.ip, 42087, 22), c.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
    expect(run(toContainer, tcp(WORLD_IP, b.ip, 42088, 22), b.info.hostIfindex).retval).toBe(TC_ACT.OK);
  });

  it('deny-all (failed closed over its quota) drops new connections as POLICY_NOT_REALIZED', () => {
    const outcome = writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 1, endPort: 65535 }), allow]], ingressOnly, 12);
    expect(outcome.failClosed).toBe(true);
    const r = fromA(b, 42090, 80);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context.dropReason).toBe(DropReason.policyNotRealized);
    expect(writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow]], ingressOnly, 13).failClosed).toBe(false);
    expect(fromA(b, 42091, 80).retval).toBe(TC_ACT.REDIRECT);
  });
});

describe('policy slot (POLICY_DEFAULT_DENY = 1, enforcement always)', () => {
  let links: ReturnType<typeof dummyLinks>;
  let dp: Datapath;
  let writer: PolicyMap;

  beforeAll(() => {
    links = dummyLinks(2);
    try {
      const loaded = loadWithPolicy({ POLICY_DEFAULT_DENY: 1 });
      dp = loaded.dp;
      writer = loaded.writer();
    } catch (err) {
      links.remove();
      throw err;
    }
  });
  afterAll(() => {
    dp?.dispose();
    links?.remove();
  });

  it('an endpoint without a record is dropped as not realized until its policy is written', () => {
    const maps = datapathMaps(dp);
    const [ifA = 0, ifB = 0] = links.ifindexes;
    const a = testEndpoint('10.206.0.10', 81, ifA, 8001);
    const b = testEndpoint('10.206.0.20', 82, ifB, 8002);
    maps.endpoints.update(a.ip, a.info);
    maps.endpoints.update(b.ip, b.info);
    const fromContainer = dp.lxc.program('cil_from_container');
    const r = run(fromContainer, tcp(a.ip, b.ip, 43000, 80), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.SHOT);
    expect(r.context).toMatchObject({ dropReason: DropReason.policyNotRealized, attachPoint: AttachPointIndex['from-container'] });
    // A realized, B not yet: dropped at B's ingress.
    writer.sync(a.info.endpointId, [[key({ identity: b.info.identity, direction: 'egress', port: 80 }), allow]], { ingress: true, egress: true }, 1);
    const atB = run(fromContainer, tcp(a.ip, b.ip, 43001, 80), a.info.hostIfindex);
    expect(atB.context).toMatchObject({ dropReason: DropReason.policyNotRealized, attachPoint: AttachPointIndex['to-container'] });
    writer.sync(b.info.endpointId, [[key({ identity: a.info.identity, port: 80 }), allow]], { ingress: true, egress: true }, 1);
    expect(run(fromContainer, tcp(a.ip, b.ip, 43002, 80), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
  });
});
