// The oracle alone, on hand-checked verdicts: if it is wrong, the e2e matrix proves nothing.
import { describe, expect, it } from 'vitest';
import { NetpolOracle, type ClusterModel, type PeerModel, type PodModel } from './oracle.js';

const PORTS = [
  { name: 'serve-80-tcp', port: 80, protocol: 'TCP' as const },
  { name: 'serve-81-udp', port: 81, protocol: 'UDP' as const },
];
const pod = (namespace: string, name: string, ip: string): PodModel => ({ namespace, name, labels: { pod: name }, ip, ports: PORTS });
const pods = ['x', 'y'].flatMap((n, i) => ['a', 'b'].map((p, j) => pod(n, p, `10.0.${i}.${j + 1}`)));
const cluster: ClusterModel = {
  namespaces: [
    { name: 'x', labels: { ns: 'x', 'kubernetes.io/metadata.name': 'x' } },
    { name: 'y', labels: { ns: 'y', team: 'blue', 'kubernetes.io/metadata.name': 'y' } },
  ],
  pods,
};
const P = (n: string, p: string): PeerModel => ({ kind: 'pod', pod: pods.find((q) => q.namespace === n && q.name === p)! });
const HOST: PeerModel = { kind: 'host', ip: '172.31.252.1' };
const W1: PeerModel = { kind: 'world', name: 'w1', ip: '192.0.2.10' };
const W2: PeerModel = { kind: 'world', name: 'w2', ip: '192.0.2.200' };

const np = (name: string, namespace: string, spec: object) => ({ kind: 'NetworkPolicy', metadata: { name, namespace }, spec });
const cnp = (name: string, namespace: string, spec: object) => ({ kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
const oracle = (...docs: object[]) => new NetpolOracle(cluster, docs);

describe('netpol oracle', () => {
  it('allows everything without policy', () => {
    const o = oracle();
    for (const s of [P('x', 'a'), P('y', 'b'), HOST, W1]) for (const d of [P('x', 'a'), P('y', 'b')]) expect(o.allowed(s, d, 'TCP', 80)).toBe(true);
    expect(o.allowed(P('x', 'a'), W1, 'UDP', 81)).toBe(true);
  });

  it('default deny ingress: only loopback and the host get in; egress of the same pods is untouched', () => {
    const o = oracle(np('d', 'x', { podSelector: {}, policyTypes: ['Ingress'] }));
    expect(o.verdict(P('x', 'b'), P('x', 'a'), 'TCP', 80)).toEqual({ allowed: false, why: 'ingress of x/a: no rule allows it' });
    expect(o.verdict(P('x', 'a'), P('x', 'a'), 'TCP', 80)).toEqual({ allowed: true, why: 'loopback' });
    expect(o.verdict(HOST, P('x', 'a'), 'TCP', 80)).toEqual({ allowed: true, why: 'ingress of x/a: allow-localhost' });
    expect(o.allowed(W1, P('x', 'a'), 'TCP', 80)).toBe(false);
    expect(o.allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(true);
  });

  it('policyTypes default: Egress only when an egress section is present', () => {
    expect(oracle(np('e', 'x', { podSelector: {}, egress: [] })).allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(true);
    expect(oracle(np('e', 'x', { podSelector: {}, egress: [{}] })).allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(true);
    const deny = oracle(np('e', 'x', { podSelector: {}, policyTypes: ['Egress'] }));
    expect(deny.allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(false);
    expect(deny.allowed(P('x', 'a'), HOST, 'TCP', 80)).toBe(false);
    expect(deny.allowed(P('y', 'a'), P('x', 'a'), 'TCP', 80)).toBe(true);
  });

  it('podSelector and namespaceSelector: ANDed in one peer, ORed across peers', () => {
    const and = oracle(np('p', 'x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] }));
    expect([P('x', 'b'), P('y', 'a'), P('y', 'b')].map((s) => and.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([false, false, true]);
    const or = oracle(np('p', 'x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] }));
    expect([P('x', 'b'), P('y', 'a'), P('y', 'b')].map((s) => or.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([true, true, true]);
    // x/b is not selected by the policy: still open.
    expect(or.allowed(W1, P('x', 'b'), 'TCP', 80)).toBe(true);
  });

  it('ports by number, by name (resolved on the destination, protocol included) and ranges', () => {
    const o = oracle(
      np('n', 'x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'UDP', port: 'serve-81-udp' }] }] }),
      np('r', 'x', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] }),
    );
    expect(o.allowed(P('y', 'a'), P('x', 'a'), 'UDP', 81)).toBe(true);
    expect(o.allowed(P('y', 'a'), P('x', 'a'), 'TCP', 81)).toBe(false);
    expect(o.allowed(P('y', 'a'), P('x', 'a'), 'UDP', 80)).toBe(false);
    expect([80, 81].map((p) => o.allowed(P('y', 'a'), P('x', 'b'), 'TCP', p))).toEqual([true, true]);
    expect(o.allowed(P('y', 'a'), P('x', 'b'), 'UDP', 80)).toBe(false);
    // A name with the wrong protocol names nothing.
    expect(oracle(np('n', 'x', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp' }] }] })).allowed(P('y', 'a'), P('x', 'a'), 'UDP', 81)).toBe(false);
  });

  it('ipBlock with except selects world addresses only, never pods or the host', () => {
    const o = oracle(np('c', 'x', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['192.0.2.128/25'] } }] }] }));
    expect([W1, W2, P('y', 'a'), HOST].map((s) => o.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([true, false, false, true]);
    const e = oracle(np('c', 'x', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.0.2.128/25' } }] }] }));
    expect([W1, W2, P('y', 'a'), HOST].map((d) => e.allowed(P('x', 'a'), d, 'TCP', 80))).toEqual([false, true, false, false]);
  });

  it('CNP selectors fold into the policy namespace unless they name it; namespace labels are selectable', () => {
    const folded = oracle(cnp('f', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' } }] }] }));
    expect([P('x', 'b'), P('y', 'b')].map((s) => folded.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([true, false]);
    const named = oracle(cnp('f', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'y' } }] }] }));
    expect([P('x', 'b'), P('y', 'b')].map((s) => named.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([false, true]);
    const nsLabel = oracle(cnp('f', 'y', { endpointSelector: { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'blue' } }, ingress: [{}] }));
    expect(nsLabel.allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(false);
    // The CNP's subject is in its own namespace only.
    expect(oracle(cnp('f', 'x', { endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'y' } }, ingress: [{}] })).allowed(P('x', 'a'), P('y', 'a'), 'TCP', 80)).toBe(true);
  });

  it('CNP rules: L4-only allows every peer, an empty rule allows nothing but enforces', () => {
    const l4 = oracle(cnp('l', 'x', { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '81' }] }] }] }));
    expect([l4.allowed(W1, P('x', 'a'), 'TCP', 81), l4.allowed(W1, P('x', 'a'), 'UDP', 81), l4.allowed(W1, P('x', 'a'), 'TCP', 80)]).toEqual([true, true, false]);
    const empty = oracle(cnp('e', 'x', { endpointSelector: {}, ingress: [{}] }));
    expect([empty.allowed(P('y', 'a'), P('x', 'a'), 'TCP', 80), empty.allowed(HOST, P('x', 'a'), 'TCP', 80)]).toEqual([false, true]);
  });

  it('entities: world, cluster, host, all', () => {
    const to = (entity: string) => oracle(cnp('t', 'x', { endpointSelector: {}, egress: [{ toEntities: [entity] }] }));
    const reach = (entity: string) => [P('y', 'a'), HOST, W1].map((d) => to(entity).allowed(P('x', 'a'), d, 'TCP', 80));
    expect(reach('world')).toEqual([false, false, true]);
    expect(reach('cluster')).toEqual([true, true, false]);
    expect(reach('host')).toEqual([false, true, false]);
    expect(reach('all')).toEqual([true, true, true]);
    expect(reach('health')).toEqual([false, false, false]);
  });

  it('deny beats allow, across policies too, and beats allow-localhost', () => {
    const o = oracle(
      cnp('allow', 'x', { endpointSelector: {}, ingress: [{ fromEntities: ['all'] }] }),
      cnp('deny', 'x', { endpointSelector: {}, ingressDeny: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'y' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] }),
    );
    expect(o.verdict(P('y', 'a'), P('x', 'a'), 'TCP', 80)).toEqual({ allowed: false, why: 'ingress of x/a: denied by CiliumNetworkPolicy/x/deny' });
    expect(o.allowed(P('y', 'a'), P('x', 'a'), 'TCP', 81)).toBe(true);
    expect(o.allowed(P('x', 'b'), P('x', 'a'), 'TCP', 80)).toBe(true);
    const noHost = oracle(cnp('d', 'x', { endpointSelector: {}, ingressDeny: [{ fromEntities: ['host'] }] }));
    expect(noHost.allowed(HOST, P('x', 'a'), 'TCP', 80)).toBe(false);
  });

  it('CIDRSet except and fromCIDR', () => {
    const o = oracle(cnp('c', 'x', { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.0/25'] }] }] }));
    expect([W1, W2, P('y', 'a')].map((s) => o.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([false, true, false]);
    const c = oracle(cnp('c', 'x', { endpointSelector: {}, egress: [{ toCIDR: ['192.0.2.10/32'] }] }));
    expect([W1, W2].map((d) => c.allowed(P('x', 'a'), d, 'UDP', 80))).toEqual([true, false]);
  });

  it('fromRequires narrows the endpoint peers of every rule selecting the subject, not CIDR or entity peers', () => {
    const every = { matchExpressions: [{ key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists' }] };
    const o = oracle(
      cnp('allow', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [every], fromEntities: ['world'] }] }),
      cnp('req', 'x', { endpointSelector: {}, ingress: [{ fromRequires: [{ ...every, matchLabels: { pod: 'a' } }] }] }),
    );
    expect([P('y', 'a'), P('y', 'b'), P('x', 'b'), W1].map((s) => o.allowed(s, P('x', 'a'), 'TCP', 80))).toEqual([true, false, false, true]);
    // Folded into the policy namespace when the requirement does not name one.
    const folded = oracle(
      cnp('allow', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [every] }] }),
      cnp('req', 'x', { endpointSelector: {}, ingress: [{ fromRequires: [{ matchLabels: { pod: 'a' } }] }] }),
    );
    expect([P('y', 'a'), P('x', 'a')].map((s) => folded.allowed(s, P('x', 'b'), 'TCP', 80))).toEqual([false, true]);
  });

  it('a connection needs the egress of the source and the ingress of the destination', () => {
    const o = oracle(
      np('in', 'x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] }),
      np('out', 'y', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }] }] }),
    );
    expect(o.verdict(P('y', 'a'), P('x', 'a'), 'TCP', 80)).toEqual({ allowed: false, why: 'egress of y/a: no rule allows it' });
    expect(o.allowed(P('y', 'a'), P('y', 'b'), 'TCP', 80)).toBe(true);
    expect(o.allowed(P('x', 'b'), P('x', 'a'), 'TCP', 80)).toBe(true);
  });

  it('refuses what it does not model, instead of expecting something wrong', () => {
    expect(() => oracle({ kind: 'Service', metadata: { name: 's' } })).toThrow(/unknown kind/);
    expect(() => oracle(cnp('i', 'x', { endpointSelector: {}, ingress: [{ icmps: [{ fields: [{ type: 8 }] }] }] }))).toThrow(/ICMP/);
  });
});
