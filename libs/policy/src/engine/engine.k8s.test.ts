// Kubernetes NetworkPolicy and CiliumNetworkPolicy semantics end to end through the parser: the
// upstream network-policy e2e model (namespaces x, y, z; pods a, b, c serving 80 and 81 over TCP
// and UDP with named ports), every pair evaluated on the watchers' accumulated map state and
// compared with the expected matrix, computed from the semantics of each case.
import type { Labels, NamedPort, PolicyEnforcement } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { PolicyEngine } from './engine.js';
import { FakeIdentities } from './fake-identities.js';
import { Accumulator, silentLogger, type StateMap } from './test-rules.js';

const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
type Pod = { ns: string; pod: string };
const ALL: Pod[] = NAMESPACES.flatMap((ns) => PODS.map((pod) => ({ ns, pod })));
const name = (p: Pod) => `${p.ns}/${p.pod}`;

const labelsOf = (p: Pod): Labels => ({
  'k8s:pod': p.pod,
  'k8s:io.kubernetes.pod.namespace': p.ns,
  'k8s:io.cilium.k8s.namespace.labels.ns': p.ns,
  'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': p.ns,
});
const NAMED_PORTS: Record<string, NamedPort> = {
  'serve-80-tcp': { port: 80, protocol: 'TCP' },
  'serve-81-tcp': { port: 81, protocol: 'TCP' },
  'serve-80-udp': { port: 80, protocol: 'UDP' },
  'serve-81-udp': { port: 81, protocol: 'UDP' },
};
const PROBES = [
  { port: 80, proto: 6 },
  { port: 81, proto: 6 },
  { port: 80, proto: 17 },
  { port: 81, proto: 17 },
] as const;
type Probe = (typeof PROBES)[number];

/** The packet evaluator over map state: deny if a matching deny entry, else allow if unenforced or a matching allow. */
function passes(state: StateMap, enforcement: PolicyEnforcement, direction: 'ingress' | 'egress', peer: number, probe: Probe): boolean {
  let allowed = false;
  for (const [k, e] of state) {
    const [id, dir, proto, port, endPort] = k.split('/').map((x, i) => (i === 1 ? x : Number(x))) as [number, string, number, number, number];
    if ((id !== 0 && id !== peer) || dir !== direction[0] || (proto !== 0 && proto !== probe.proto) || (port !== 0 && (probe.port < port || probe.port > endPort))) continue;
    if (e.verdict === 'deny') return false;
    allowed = true;
  }
  return allowed || !enforcement[direction];
}

async function cluster() {
  const identities = new FakeIdentities();
  const engine = new PolicyEngine({ identities, enforcement: 'default', allowLocalhost: true, logger: silentLogger() });
  const watchers = new Map<string, Accumulator>();
  const ids = new Map<string, number>();
  for (const p of ALL) {
    const id = identities.add(labelsOf(p)).id;
    ids.set(name(p), id);
    watchers.set(name(p), new Accumulator(engine, { endpointId: watchers.size + 1, identity: id, labels: labelsOf(p), namedPorts: NAMED_PORTS }));
  }
  /** Every pair × probe, as `src->dst port/proto` for the ones that pass. */
  const matrix = (): Set<string> => {
    const out = new Set<string>();
    for (const src of ALL) {
      for (const dst of ALL) {
        for (const probe of PROBES) {
          const s = watchers.get(name(src))!;
          const d = watchers.get(name(dst))!;
          if (passes(s.state, s.enforcement, 'egress', ids.get(name(dst))!, probe) && passes(d.state, d.enforcement, 'ingress', ids.get(name(src))!, probe)) {
            out.add(`${name(src)}->${name(dst)} ${probe.port}/${probe.proto === 6 ? 'TCP' : 'UDP'}`);
          }
        }
      }
    }
    return out;
  };
  const expected = (ok: (src: Pod, dst: Pod, probe: Probe) => boolean): Set<string> => {
    const out = new Set<string>();
    for (const src of ALL) for (const dst of ALL) for (const probe of PROBES) if (ok(src, dst, probe)) out.add(`${name(src)}->${name(dst)} ${probe.port}/${probe.proto === 6 ? 'TCP' : 'UDP'}`);
    return out;
  };
  return { identities, engine, watchers, matrix, expected };
}

const np = (ns: string, policyName: string, spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: policyName, namespace: ns }, spec });
const cnp = (ns: string, policyName: string, spec: unknown) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: policyName, namespace: ns }, spec });

describe('Kubernetes NetworkPolicy semantics through the parser', () => {
  it('default deny ingress, egress and both; a policy updated in place and deleted', async () => {
    const c = await cluster();
    expect(c.matrix()).toEqual(c.expected(() => true));
    await c.engine.import([np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })]);
    expect(c.matrix()).toEqual(c.expected((_s, d) => d.ns !== 'x'));
    await c.engine.import([np('x', 'deny', { podSelector: {}, policyTypes: ['Egress'] })]);
    expect(c.matrix()).toEqual(c.expected((s) => s.ns !== 'x'));
    await c.engine.import([np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]);
    expect(c.matrix()).toEqual(c.expected((s, d) => s.ns !== 'x' && d.ns !== 'x'));
    await c.engine.delete({ name: 'deny', namespace: 'x' });
    expect(c.matrix()).toEqual(c.expected(() => true));
  });

  it('allows from the same namespace, and from other namespaces by label', async () => {
    const c = await cluster();
    await c.engine.import([np('x', 'same-ns', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
    expect(c.matrix()).toEqual(c.expected((s, d) => d.ns !== 'x' || s.ns === 'x'));
    await c.engine.import([np('x', 'from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })]);
    expect(c.matrix()).toEqual(c.expected((s, d) => d.ns !== 'x' || s.ns === 'x' || s.ns === 'y'));
  });

  it('ANDs podSelector and namespaceSelector within one peer and ORs peers', async () => {
    const c = await cluster();
    await c.engine.import([np('x', 'and', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] })]);
    const toXa = (d: Pod) => d.ns === 'x' && d.pod === 'a';
    expect(c.matrix()).toEqual(c.expected((s, d) => !toXa(d) || (s.ns === 'y' && s.pod === 'b')));
    await c.engine.import([np('x', 'and', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] })]);
    expect(c.matrix()).toEqual(c.expected((s, d) => !toXa(d) || s.ns === 'y' || (s.ns === 'x' && s.pod === 'b')));
  });

  it('resolves named ports on the destination pod and opens endPort ranges', async () => {
    const c = await cluster();
    await c.engine.import([np('x', 'named', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] })]);
    const toXa = (d: Pod) => d.ns === 'x' && d.pod === 'a';
    expect(c.matrix()).toEqual(c.expected((_s, d, p) => !toXa(d) || (p.port === 81 && p.proto === 17)));
    await c.engine.import([np('y', 'range', { podSelector: {}, ingress: [{ ports: [{ port: 79, endPort: 80, protocol: 'TCP' }] }] })]);
    expect(c.matrix()).toEqual(c.expected((_s, d, p) => (!toXa(d) || (p.port === 81 && p.proto === 17)) && (d.ns !== 'y' || (p.port === 80 && p.proto === 6))));
    // Egress named ports resolve on whichever pod is the destination.
    await c.engine.import([np('z', 'egress-named', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })]);
    expect(c.matrix()).toEqual(
      c.expected((s, d, p) => (!toXa(d) || (p.port === 81 && p.proto === 17)) && (d.ns !== 'y' || (p.port === 80 && p.proto === 6)) && (s.ns !== 'z' || (p.port === 80 && p.proto === 6))),
    );
  });

  it('selects CIDR identities inside an ipBlock and not those in its except', async () => {
    const c = await cluster();
    const outside = await c.identities.allocateCidr('192.168.1.0/24');
    const inner = await c.identities.allocateCidr('192.168.7.0/24');
    const far = await c.identities.allocateCidr('172.16.0.0/12');
    await c.engine.import([np('x', 'ipblock', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }] }] })]);
    const w = c.watchers.get('x/a')!;
    const block = c.identities.lookupByLabels({ 'cidr:192.168.0.0/16': '', 'reserved:world': '' })!;
    const probe = PROBES[0];
    expect(passes(w.state, w.enforcement, 'egress', block.id, probe)).toBe(true);
    expect(passes(w.state, w.enforcement, 'egress', inner.id, probe)).toBe(true);
    expect(passes(w.state, w.enforcement, 'egress', outside.id, probe)).toBe(false);
    expect(passes(w.state, w.enforcement, 'egress', far.id, probe)).toBe(false);
    expect(passes(w.state, w.enforcement, 'egress', 2, probe)).toBe(false);
    // CIDR peers never select pods: x/a reaches no pod now.
    expect([...c.matrix()].filter((e) => e.startsWith('x/a->'))).toEqual([]);
  });

  it('re-resolves when a namespace is relabelled (the endpoints rewatched with new labels)', async () => {
    const c = await cluster();
    await c.engine.import([np('x', 'from-prod', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: 'prod' } } }] }] })]);
    expect(c.matrix()).toEqual(c.expected((_s, d) => d.ns !== 'x'));
    // Namespace y gets env=prod: its pods have a new identity; their endpoints are rewatched.
    for (const pod of PODS) {
      const key = `y/${pod}`;
      const old = c.watchers.get(key)!;
      old.unwatch();
      const labels = { ...old.subject.labels, 'k8s:io.cilium.k8s.namespace.labels.env': 'prod' };
      const identity = c.identities.add(labels);
      c.watchers.set(key, new Accumulator(c.engine, { ...old.subject, identity: identity.id, labels }));
    }
    const ids = new Map([...c.watchers].map(([k, w]) => [k, w.subject.identity]));
    const reach = new Set<string>();
    for (const src of ALL) for (const dst of ALL) {
      const s = c.watchers.get(name(src))!;
      const d = c.watchers.get(name(dst))!;
      if (passes(s.state, s.enforcement, 'egress', ids.get(name(dst))!, PROBES[0]) && passes(d.state, d.enforcement, 'ingress', ids.get(name(src))!, PROBES[0])) reach.add(`${name(src)}->${name(dst)}`);
    }
    const want = new Set(ALL.flatMap((s) => ALL.filter((d) => d.ns !== 'x' || s.ns === 'y').map((d) => `${name(s)}->${name(d)}`)));
    expect(reach).toEqual(want);
  });
});

describe('CiliumNetworkPolicy semantics through the parser', () => {
  it('entities, deny beating allow, and fromRequires', async () => {
    const c = await cluster();
    await c.engine.import([
      cnp('x', 'cluster-in', { endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }] }),
      cnp('x', 'deny-b', { endpointSelector: {}, ingressDeny: [{ fromEndpoints: [{ matchLabels: { pod: 'b' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] }),
    ]);
    // Cluster entity: every pod may reach x, except x/b (deny folded into namespace x) on 80/TCP.
    expect(c.matrix()).toEqual(c.expected((s, d, p) => d.ns !== 'x' || !(s.ns === 'x' && s.pod === 'b' && p.port === 80 && p.proto === 6)));
    // require-a's fromRequires narrows the endpoint peers of every rule selecting y's pods,
    // from-x's included (entity peers are not narrowed).
    await c.engine.import([
      cnp('y', 'from-x', { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'x' } }] }] }),
      cnp('y', 'require-a', { endpointSelector: {}, ingress: [{ fromRequires: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'x', pod: 'a' } }] }] }),
    ]);
    expect(c.matrix()).toEqual(
      c.expected((s, d, p) => (d.ns !== 'x' || !(s.ns === 'x' && s.pod === 'b' && p.port === 80 && p.proto === 6)) && (d.ns !== 'y' || (s.ns === 'x' && s.pod === 'a'))),
    );
    await c.engine.delete({ name: 'require-a', namespace: 'y' });
    expect(c.matrix()).toEqual(c.expected((s, d, p) => (d.ns !== 'x' || !(s.ns === 'x' && s.pod === 'b' && p.port === 80 && p.proto === 6)) && (d.ns !== 'y' || s.ns === 'x')));
    const trace = c.engine.trace({ src: labelsOf({ ns: 'x', pod: 'b' }), dst: labelsOf({ ns: 'x', pod: 'c' }), dport: 80, protocol: 'TCP' });
    expect(trace.verdict).toBe('denied');
    expect(trace.ingress.deniedBy).toEqual(['CiliumNetworkPolicy/x/deny-b']);
    expect(trace.ingress.allowedBy).toEqual(['CiliumNetworkPolicy/x/cluster-in']);
  });
});
