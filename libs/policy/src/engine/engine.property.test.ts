import { ReservedIdentity, type Identity, type Labels, type NamedPort, type PolicyEntry, type PolicyKey } from '@cilia/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EndpointSelector, LabelRequirement, Peer, PeerRule, PolicyRule, PortRule } from '../model.js';
import { PolicyEngine } from './engine.js';
import { FakeIdentities } from './fake-identities.js';
import { Accumulator, silentLogger, toMap } from './test-rules.js';

const NS = 'k8s:io.kubernetes.pod.namespace';

// ---- generators over a small label universe, so selectors, identities and rules collide often

const podLabelsArb: fc.Arbitrary<Labels> = fc
  .record({ app: fc.constantFrom('a', 'b', 'c'), ns: fc.constantFrom('x', 'y'), env: fc.option(fc.constantFrom('prod', 'dev'), { nil: undefined }) })
  .map(({ app, ns, env }) => ({ 'k8s:app': app, [NS]: ns, ...(env ? { 'k8s:env': env } : {}) }));

const requirementArb: fc.Arbitrary<LabelRequirement> = fc.oneof(
  fc.record({ key: fc.constantFrom('k8s:app', 'any:app'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.subarray(['a', 'b', 'c'], { minLength: 1 }) }),
  fc.record({ key: fc.constant(NS), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.subarray(['x', 'y'], { minLength: 1 }) }),
  fc.record({ key: fc.constantFrom('k8s:env', 'any:env'), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const), values: fc.constant([]) }),
  fc.record({ key: fc.constant('k8s:env'), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.subarray(['prod', 'dev'], { minLength: 1 }) }),
);
const selectorArb: fc.Arbitrary<EndpointSelector> = fc.array(requirementArb, { maxLength: 2 }).map((requirements) => ({ requirements }));

const CIDR_PEERS = [
  { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] },
  { cidr: '10.0.0.0/8', except: [] },
  { cidr: '10.1.0.0/16', except: [] },
  { cidr: '10.1.2.0/24', except: [] },
  { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] },
];
const peerArb: fc.Arbitrary<Peer> = fc.oneof(
  { weight: 4, arbitrary: selectorArb.map((selector): Peer => ({ kind: 'endpoints', selector })) },
  { weight: 2, arbitrary: fc.constantFrom('all', 'world', 'cluster', 'host').map((entity): Peer => ({ kind: 'entity', entity: entity as 'all' })) },
  { weight: 2, arbitrary: fc.constantFrom(...CIDR_PEERS).map((c): Peer => ({ kind: 'cidr', ...c })) },
);
const PORTS: PortRule[] = [
  { protocol: 'TCP', port: 80 },
  { protocol: 'TCP', port: 80, endPort: 90 },
  { protocol: 'UDP', port: 53 },
  { protocol: 'ANY', port: 0 },
  { protocol: 'ANY', port: 81 },
  { protocol: 'TCP', port: 0 },
  { protocol: 'TCP', port: 0, name: 'http' },
  { protocol: 'ANY', port: 0, name: 'dns' },
];
const peerRuleArb: fc.Arbitrary<PeerRule> = fc.record({
  peers: fc.oneof({ weight: 1, arbitrary: fc.constant('all' as const) }, { weight: 4, arbitrary: fc.array(peerArb, { maxLength: 2 }) }),
  ports: fc.subarray(PORTS, { maxLength: 2 }),
  path: fc.constant('spec'),
});
const sectionArb = fc.array(peerRuleArb, { maxLength: 2 });

/** One policy (1–2 rules) named from a small set, so imports replace earlier ones. */
const policyArb: fc.Arbitrary<PolicyRule[]> = fc
  .record({
    name: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4'),
    rules: fc.array(
      fc.record({
        subject: selectorArb,
        ingress: sectionArb,
        ingressDeny: fc.array(peerRuleArb, { maxLength: 1 }),
        egress: sectionArb,
        egressDeny: fc.array(peerRuleArb, { maxLength: 1 }),
        enforces: fc.record({ ingress: fc.boolean(), egress: fc.boolean() }),
        ingressRequires: fc.array(selectorArb, { maxLength: 1 }),
        egressRequires: fc.array(selectorArb, { maxLength: 1 }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
  })
  .map(({ name, rules }) =>
    rules.map((r, specIndex) => ({
      ...r,
      id: `CiliumNetworkPolicy/x/${name}#${specIndex}`,
      origin: { kind: 'CiliumNetworkPolicy' as const, namespace: 'x', name, specIndex },
      notes: [],
    })),
  );

const namedPortsArb: fc.Arbitrary<Record<string, NamedPort>> = fc.record(
  { http: fc.constantFrom<NamedPort>({ port: 8080, protocol: 'TCP' }, { port: 80, protocol: 'TCP' }), dns: fc.constantFrom<NamedPort>({ port: 53, protocol: 'UDP' }, { port: 5353, protocol: 'TCP' }) },
  { requiredKeys: [] },
);

type Op =
  | { t: 'import'; rules: PolicyRule[] }
  | { t: 'delete'; name: string }
  | { t: 'addIdentity'; labels: Labels }
  | { t: 'removeIdentity'; pick: number }
  | { t: 'addCidr'; prefix: string }
  | { t: 'watch'; labels: Labels; namedPorts: Record<string, NamedPort> }
  | { t: 'relabel'; pick: number; labels: Labels }
  | { t: 'unwatch'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: policyArb.map((rules): Op => ({ t: 'import', rules })) },
  { weight: 2, arbitrary: fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4').map((name): Op => ({ t: 'delete', name })) },
  { weight: 3, arbitrary: podLabelsArb.map((labels): Op => ({ t: 'addIdentity', labels })) },
  { weight: 2, arbitrary: fc.nat().map((pick): Op => ({ t: 'removeIdentity', pick })) },
  { weight: 1, arbitrary: fc.constantFrom('10.1.2.3/32', '10.2.0.0/16', '192.168.0.0/24').map((prefix): Op => ({ t: 'addCidr', prefix })) },
  { weight: 2, arbitrary: fc.record({ labels: podLabelsArb, namedPorts: namedPortsArb }).map((w): Op => ({ t: 'watch', ...w })) },
  { weight: 2, arbitrary: fc.record({ pick: fc.nat(), labels: podLabelsArb }).map((r): Op => ({ t: 'relabel', ...r })) },
  { weight: 1, arbitrary: fc.nat().map((pick): Op => ({ t: 'unwatch', pick })) },
);

describe('PolicyEngine incremental resolution (property)', () => {
  it('keeps every watcher equal to a fresh resolve after any sequence of rule, identity and label changes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(podLabelsArb, { maxLength: 4 }), fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.constantFrom('default' as const, 'always' as const), async (initial, ops, enforcement) => {
        const identities = new FakeIdentities();
        for (const l of initial) identities.add(l);
        const engine = new PolicyEngine({ identities, enforcement, allowLocalhost: true, logger: silentLogger() });
        const watchers: Accumulator[] = [];
        let endpointId = 1;
        const watch = (labels: Labels, namedPorts: Record<string, NamedPort>) => {
          const identity = identities.add(labels);
          watchers.push(new Accumulator(engine, { endpointId: endpointId++, identity: identity.id, labels, namedPorts }));
        };
        for (const op of ops) {
          switch (op.t) {
            case 'import':
              await engine.importRules(op.rules);
              break;
            case 'delete':
              await engine.delete({ name: op.name }).catch(() => undefined);
              break;
            case 'addIdentity':
              identities.add(op.labels);
              break;
            case 'removeIdentity': {
              const removable = identities.list().filter((i) => i.scope === 'cluster');
              if (removable.length) identities.remove(removable[op.pick % removable.length]!.id);
              break;
            }
            case 'addCidr':
              await identities.allocateCidr(op.prefix);
              break;
            case 'watch':
              watch(op.labels, op.namedPorts);
              break;
            case 'relabel':
            case 'unwatch': {
              if (watchers.length === 0) break;
              const [w] = watchers.splice(op.pick % watchers.length, 1);
              w!.unwatch();
              if (op.t === 'relabel') watch(op.labels, w!.subject.namedPorts ?? {});
              break;
            }
          }
          for (const w of watchers) {
            const fresh = engine.resolve(w.subject);
            expect(w.state).toEqual(toMap(fresh.entries));
            expect(w.enforcement).toEqual(fresh.enforcement);
            expect(w.revision).toBe(engine.revision());
          }
        }
        engine.close();
      }),
      { numRuns: 150 },
    );
  }, 120_000);
});

// ---- deny precedence, against a reference that evaluates the rules one by one

function refRequirement(r: LabelRequirement, labels: Labels): boolean {
  const values = Object.entries(labels)
    .filter(([k]) => k === r.key || (r.key.startsWith('any:') && k.split(':').slice(1).join(':') === r.key.slice(4)))
    .map(([, v]) => v);
  if (r.operator === 'Exists') return values.length > 0;
  if (r.operator === 'DoesNotExist') return values.length === 0;
  const hit = values.some((v) => r.values.includes(v));
  return r.operator === 'In' ? hit : !hit;
}
const refSelector = (s: EndpointSelector, labels: Labels) => s.requirements.every((r) => refRequirement(r, labels));

function ipv4Prefix(text: string): [number, number] {
  const [addr, len] = text.split('/');
  const n = addr!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return [n, Number(len)];
}
function inside(outer: string, inner: string): boolean {
  const [o, ol] = ipv4Prefix(outer);
  const [i, il] = ipv4Prefix(inner);
  const block = 2 ** (32 - ol);
  return il >= ol && Math.floor(o / block) === Math.floor(i / block);
}

function refPeer(peer: Peer, id: Identity, requires: readonly EndpointSelector[]): boolean {
  switch (peer.kind) {
    case 'endpoints':
      return refSelector(peer.selector, id.labels) && requires.every((s) => refSelector(s, id.labels));
    case 'entity':
      if (peer.entity === 'all') return true;
      if (peer.entity === 'host') return id.id === ReservedIdentity.host;
      if (peer.entity === 'world') return id.id === ReservedIdentity.world || id.scope === 'local';
      return [1, 3, 4, 5, 6, 7, 8].includes(id.id) || id.scope === 'cluster';
    case 'cidr': {
      if (peer.cidr === '0.0.0.0/0' && id.id === ReservedIdentity.world) return true;
      const own = Object.keys(id.labels).find((k) => k.startsWith('cidr:'))?.slice(5);
      return !!own && inside(peer.cidr, own) && !peer.except.some((e) => inside(e, own));
    }
  }
}

const PROTO: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };
function refPorts(ports: readonly PortRule[], proto: number, port: number, named: Record<string, NamedPort>): boolean {
  if (ports.length === 0) return true;
  return ports.some((p) => {
    if (p.name !== undefined) {
      const b = named[p.name];
      return !!b && (p.protocol === 'ANY' || p.protocol === b.protocol) && PROTO[b.protocol] === proto && b.port === port;
    }
    if (p.protocol === 'ANY' && p.port === 0) return true;
    if (p.protocol === 'ANY' ? ![6, 17, 132].includes(proto) : PROTO[p.protocol] !== proto) return false;
    return p.port === 0 || (port >= p.port && port <= (p.endPort ?? p.port));
  });
}

interface Packet {
  readonly peer: Identity;
  readonly direction: 'ingress' | 'egress';
  readonly proto: number;
  readonly port: number;
}

/** Direct evaluation of the rules: deny if a deny rule covers it, else allow if unenforced or an allow rule does. */
function referenceVerdict(rules: readonly PolicyRule[], subject: Labels, named: Record<string, NamedPort>, p: Packet): { verdict: 'allow' | 'deny'; denyMatched: boolean } {
  const selecting = rules.filter((r) => refSelector(r.subject, subject));
  const ingress = p.direction === 'ingress';
  const requires = selecting.flatMap((r) => (ingress ? r.ingressRequires : r.egressRequires));
  const covers = (pr: PeerRule) => (pr.peers === 'all' || pr.peers.some((peer) => refPeer(peer, p.peer, requires))) && refPorts(pr.ports, p.proto, p.port, named);
  const denyMatched = selecting.some((r) => (ingress ? r.ingressDeny : r.egressDeny).some(covers));
  const enforced = selecting.some((r) => r.enforces[p.direction]);
  const allowMatched = selecting.some((r) => (ingress ? r.ingress : r.egress).some(covers)) || (ingress && p.peer.id === ReservedIdentity.host);
  return { verdict: denyMatched ? 'deny' : !enforced || allowMatched ? 'allow' : 'deny', denyMatched };
}

/** The tiny map-state evaluator: deny if a matching deny key, else allow if a matching allow key (or unenforced), else deny. */
function mapVerdict(entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>, enforced: boolean, p: Packet): 'allow' | 'deny' {
  const matching = entries.filter(
    ([k]) => (k.identity === 0 || k.identity === p.peer.id) && k.direction === p.direction && (k.protocol === 0 || k.protocol === p.proto) && (k.port === 0 || (p.port >= k.port && p.port <= k.endPort)),
  );
  if (matching.some(([, e]) => e.verdict === 'deny')) return 'deny';
  return !enforced || matching.some(([, e]) => e.verdict === 'allow') ? 'allow' : 'deny';
}

describe('PolicyEngine deny precedence (property)', () => {
  it('never allows a packet a deny rule covers, and agrees with rule-by-rule evaluation', async () => {
    const packetArb = fc.record({
      pick: fc.nat(),
      direction: fc.constantFrom('ingress' as const, 'egress' as const),
      proto: fc.constantFrom(6, 17, 132),
      port: fc.constantFrom(53, 80, 81, 85, 90, 443, 5353, 8080),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 1, maxLength: 4 }),
        fc.array(podLabelsArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.constantFrom('10.1.2.3/32', '10.2.0.0/16', '192.168.0.0/24', '10.1.0.0/16'), { maxLength: 3 }),
        podLabelsArb,
        namedPortsArb,
        fc.array(packetArb, { minLength: 1, maxLength: 20 }),
        async (policies, pods, cidrs, subjectLabels, namedPorts, packets) => {
          const identities = new FakeIdentities();
          for (const l of pods) identities.add(l);
          for (const c of cidrs) await identities.allocateCidr(c);
          const engine = new PolicyEngine({ identities, enforcement: 'default', allowLocalhost: true, logger: silentLogger() });
          await engine.importRules(policies.flat());
          const subjectIdentity = identities.add(subjectLabels);
          const resolved = engine.resolve({ endpointId: 1, identity: subjectIdentity.id, labels: subjectLabels, namedPorts });
          // Stored rules, after replacements by name.
          const rules = engine.normalizedRules();
          const peers = identities.list().filter((i) => i.id !== 0);
          for (const pk of packets) {
            const p = { ...pk, peer: peers[pk.pick % peers.length]! };
            const ref = referenceVerdict(rules, subjectLabels, namedPorts, p);
            const got = mapVerdict(resolved.entries, resolved.enforcement[p.direction], p);
            if (ref.denyMatched) expect(got).toBe('deny');
            expect(got).toBe(ref.verdict);
          }
          engine.close();
        },
      ),
      { numRuns: 300 },
    );
  }, 120_000);
});
