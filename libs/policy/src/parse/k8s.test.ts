import { describe, expect, it } from 'vitest';
import type { PolicyRule } from '../model.js';
import { parsePolicyDocument } from './index.js';

function np(spec: unknown, metadata: Record<string, unknown> = { name: 'np', namespace: 'x' }) {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec };
}
function only(doc: unknown): PolicyRule {
  const result = parsePolicyDocument(doc);
  if (!result.ok) throw new Error(`unexpected errors: ${JSON.stringify(result.errors)}`);
  expect(result.rules).toHaveLength(1);
  return result.rules[0]!;
}
const inNs = (n: string) => ({ key: 'k8s:io.kubernetes.pod.namespace', operator: 'In', values: [n] });
const anyNs = { key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists', values: [] };
const pod = (v: string) => ({ key: 'k8s:pod', operator: 'In', values: [v] });
const nsLabel = (k: string, v: string) => ({ key: `k8s:io.cilium.k8s.namespace.labels.${k}`, operator: 'In', values: [v] });
const endpoints = (...requirements: unknown[]) => ({ kind: 'endpoints', selector: { requirements } });

describe('NetworkPolicy', () => {
  it('selects pods of its namespace with k8s: keys and defaults policyTypes to Ingress', () => {
    const rule = only(np({ podSelector: { matchLabels: { pod: 'a' } } }));
    expect(rule.id).toBe('NetworkPolicy/x/np');
    expect(rule.origin).toEqual({ kind: 'NetworkPolicy', name: 'np', namespace: 'x' });
    expect(rule.subject.requirements).toEqual([inNs('x'), pod('a')]);
    expect(rule.enforces).toEqual({ ingress: true, egress: false });
    expect(rule.ingress).toEqual([]);
    expect(rule.egress).toEqual([]);
    expect(rule.ingressDeny).toEqual([]);
    expect(rule.egressDeny).toEqual([]);
  });

  it('adds Egress to the default policyTypes when there are egress rules', () => {
    expect(only(np({ podSelector: {}, egress: [{}] })).enforces).toEqual({ ingress: true, egress: true });
    expect(only(np({ podSelector: {}, egress: [] })).enforces).toEqual({ ingress: true, egress: false });
    expect(only(np({ podSelector: {}, policyTypes: ['Egress'] })).enforces).toEqual({ ingress: false, egress: true });
    expect(only(np({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] })).enforces).toEqual({ ingress: true, egress: true });
  });

  it('ignores the rules of a direction outside policyTypes, with a note', () => {
    const rule = only(np({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}], egress: [{}] }));
    expect(rule.ingress).toEqual([]);
    expect(rule.egress).toHaveLength(1);
    expect(rule.notes).toEqual(['spec.ingress: ignored, policyTypes does not include Ingress']);
  });

  it('allows everything for ingress: [{}] (every peer, every port)', () => {
    const rule = only(np({ podSelector: {}, ingress: [{}] }));
    expect(rule.ingress).toEqual([{ peers: 'all', ports: [], path: 'spec.ingress[0]' }]);
    expect(only(np({ podSelector: {}, ingress: [{ from: [], ports: [] }] })).ingress[0]!.peers).toBe('all');
  });

  it('scopes a podSelector-only peer to the policy namespace', () => {
    const rule = only(np({ podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { podSelector: {} }] }] }));
    expect(rule.ingress[0]!.peers).toEqual([endpoints(inNs('x'), pod('b')), endpoints(inNs('x'))]);
  });

  it('ANDs podSelector and namespaceSelector within one peer, ORs separate peers', () => {
    const and = only(np({
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }] }],
    }));
    expect(and.ingress[0]!.peers).toEqual([endpoints(nsLabel('ns', 'y'), anyNs, pod('a'))]);
    const or = only(np({
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'a' } } }] }],
    }));
    expect(or.ingress[0]!.peers).toEqual([endpoints(nsLabel('ns', 'y'), anyNs), endpoints(inNs('x'), pod('a'))]);
  });

  it('makes namespaceSelector {} every pod of every namespace', () => {
    const rule = only(np({ podSelector: {}, egress: [{ to: [{ namespaceSelector: {} }, { namespaceSelector: {}, podSelector: { matchLabels: { pod: 'c' } } }] }] }));
    expect(rule.egress[0]!.peers).toEqual([endpoints(anyNs), endpoints(anyNs, pod('c'))]);
  });

  it('translates namespaceSelector expressions onto namespace label keys', () => {
    const rule = only(np({
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['z', 'y'] }] } }] }],
    }));
    expect(rule.ingress[0]!.peers).toEqual([
      endpoints({ key: 'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name', operator: 'NotIn', values: ['y', 'z'] }, anyNs),
    ]);
  });

  it('parses ipBlock with except as a CIDR peer', () => {
    const rule = only(np({
      podSelector: {},
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }, { ipBlock: { cidr: 'fd00::/16' } }] }],
    }));
    expect(rule.egress[0]!.peers).toEqual([
      { kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] },
      { kind: 'cidr', cidr: 'fd00::/16', except: [] },
    ]);
  });

  it('parses ports: protocol default TCP, numbers, names, endPort, missing port = every port', () => {
    const rule = only(np({
      podSelector: {},
      ingress: [{
        ports: [
          { port: 80 },
          { protocol: 'UDP', port: 'serve-81-udp' },
          { port: 8000, endPort: 8100 },
          { protocol: 'SCTP' },
          { port: 443, endPort: 443 },
        ],
      }],
    }));
    expect(rule.ingress[0]!.ports).toEqual([
      { protocol: 'TCP', port: 80 },
      { protocol: 'UDP', port: 0, name: 'serve-81-udp' },
      { protocol: 'TCP', port: 8000, endPort: 8100 },
      { protocol: 'SCTP', port: 0 },
      { protocol: 'TCP', port: 443 },
    ]);
    expect(rule.ingress[0]!.peers).toBe('all');
  });

  it('defaults the namespace to default', () => {
    const rule = only(np({ podSelector: {} }, { name: 'np' }));
    expect(rule.id).toBe('NetworkPolicy/default/np');
    expect(rule.subject.requirements).toEqual([inNs('default')]);
  });
});

describe('CiliumNetworkPolicy vs NetworkPolicy semantics', () => {
  it('an empty ingress rule allows all in a NetworkPolicy but selects nothing in a CNP', () => {
    const k8s = only(np({ podSelector: {}, ingress: [{}] }));
    const cilium = only({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'c', namespace: 'x' }, spec: { endpointSelector: {}, ingress: [{}] } });
    expect(k8s.ingress[0]!.peers).toBe('all');
    expect(cilium.ingress[0]!.peers).toEqual([]);
    expect(k8s.enforces.ingress && cilium.enforces.ingress).toBe(true);
  });
});
