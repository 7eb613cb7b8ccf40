import { describe, expect, it } from 'vitest';
import type { PolicyRule } from '../model.js';
import { parsePolicyDocument } from './index.js';

function cnp(spec: unknown, metadata: Record<string, unknown> = { name: 'p', namespace: 'x' }) {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata, spec };
}
function ccnp(spec: unknown) {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'c' }, spec };
}
function rules(doc: unknown): readonly PolicyRule[] {
  const result = parsePolicyDocument(doc);
  if (!result.ok) throw new Error(`unexpected errors: ${JSON.stringify(result.errors)}`);
  return result.rules;
}
function only(doc: unknown): PolicyRule {
  const list = rules(doc);
  expect(list).toHaveLength(1);
  return list[0]!;
}
const ns = (n: string) => ({ key: 'k8s:io.kubernetes.pod.namespace', operator: 'In', values: [n] });
const app = (v: string, source = 'any') => ({ key: `${source}:app`, operator: 'In', values: [v] });

describe('CiliumNetworkPolicy', () => {
  it('scopes the subject to the policy namespace and names the rule', () => {
    const rule = only(cnp({ endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{}] }] }));
    expect(rule.id).toBe('CiliumNetworkPolicy/x/p');
    expect(rule.origin).toEqual({ kind: 'CiliumNetworkPolicy', name: 'p', namespace: 'x' });
    expect(rule.subject.requirements).toEqual([app('web'), ns('x')]);
    expect(rule.enforces).toEqual({ ingress: true, egress: false });
    expect(rule.notes).toEqual([]);
  });

  it('defaults metadata.namespace to default', () => {
    const rule = only(cnp({ endpointSelector: {} }, { name: 'p' }));
    expect(rule.id).toBe('CiliumNetworkPolicy/default/p');
    expect(rule.subject.requirements).toEqual([ns('default')]);
  });

  it('keeps sourced keys, turns bare keys into any:, and sorts requirements canonically', () => {
    const rule = only(cnp({
      endpointSelector: {
        matchLabels: { 'k8s:tier': 'db', app: 'web' },
        matchExpressions: [
          { key: 'zone', operator: 'NotIn', values: ['b', 'a', 'b'] },
          { key: 'k8s:env', operator: 'Exists' },
          { key: 'app', operator: 'In', values: ['web'] },
        ],
      },
    }));
    expect(rule.subject.requirements).toEqual([
      app('web'),
      { key: 'any:zone', operator: 'NotIn', values: ['a', 'b'] },
      { key: 'k8s:env', operator: 'Exists', values: [] },
      ns('x'),
      { key: 'k8s:tier', operator: 'In', values: ['db'] },
    ]);
  });

  it('folds the namespace into peer selectors unless they name one or select reserved identities', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [{
        fromEndpoints: [
          { matchLabels: { app: 'a' } },
          { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'y', app: 'b' } },
          { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'Exists' }] },
          { matchLabels: { 'reserved:host': '' } },
          {},
        ],
      }],
      egress: [{ toEndpoints: [{ matchLabels: { 'k8s:app': 'c' } }] }],
    }));
    const selectors = (rule.ingress[0]!.peers as readonly { selector: { requirements: readonly unknown[] } }[]).map((p) => p.selector.requirements);
    expect(selectors).toEqual([
      [app('a'), ns('x')],
      [app('b'), ns('y')],
      [{ key: 'any:io.kubernetes.pod.namespace', operator: 'Exists', values: [] }],
      [{ key: 'reserved:host', operator: 'In', values: [''] }],
      [ns('x')],
    ]);
    expect(rule.egress[0]!.peers).toEqual([{ kind: 'endpoints', selector: { requirements: [app('c', 'k8s'), ns('x')] } }]);
    expect(rule.enforces).toEqual({ ingress: true, egress: true });
  });

  it('does not fold namespaces in a CiliumClusterwideNetworkPolicy', () => {
    const rule = only(ccnp({ endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'db' } }] }] }));
    expect(rule.id).toBe('CiliumClusterwideNetworkPolicy//c');
    expect(rule.origin).toEqual({ kind: 'CiliumClusterwideNetworkPolicy', name: 'c' });
    expect(rule.subject.requirements).toEqual([app('web')]);
    expect(rule.egress[0]!.peers).toEqual([{ kind: 'endpoints', selector: { requirements: [app('db')] } }]);
  });

  it('gives an empty rule no peers, a ports-only rule every peer, and ORs L3 fields', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [
        {},
        { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
        { fromEntities: ['world', 'host'], fromCIDR: ['10.0.0.0/8'], toPorts: [{ ports: [{ port: 53, protocol: 'UDP' }] }] },
      ],
    }));
    expect(rule.ingress.map((r) => r.peers)).toEqual([
      [],
      'all',
      [
        { kind: 'cidr', cidr: '10.0.0.0/8', except: [] },
        { kind: 'entity', entity: 'world' },
        { kind: 'entity', entity: 'host' },
      ],
    ]);
    expect(rule.ingress.map((r) => r.ports)).toEqual([[], [{ protocol: 'TCP', port: 80 }], [{ protocol: 'UDP', port: 53 }]]);
    expect(rule.ingress.map((r) => r.path)).toEqual(['spec.ingress[0]', 'spec.ingress[1]', 'spec.ingress[2]']);
  });

  it('treats L3 and L4 fields given as empty lists as selecting nothing, not everything', () => {
    const rule = only(cnp({ endpointSelector: {}, ingress: [{ fromEndpoints: [], toPorts: [{ ports: [{ port: '80' }] }] }] }));
    expect(rule.ingress[0]!.peers).toEqual([]);
    const noPorts = only(cnp({ endpointSelector: {}, ingress: [{ toPorts: [], icmps: [] }] }));
    expect(noPorts.ingress[0]).toEqual({ peers: [], ports: [], path: 'spec.ingress[0]' });
  });

  it('parses every entity', () => {
    const entities = ['all', 'world', 'cluster', 'host', 'remote-node', 'health', 'init', 'unmanaged', 'kube-apiserver', 'ingress'];
    const rule = only(cnp({ endpointSelector: {}, egress: [{ toEntities: entities }] }));
    expect(rule.egress[0]!.peers).toEqual(entities.map((entity) => ({ kind: 'entity', entity })));
  });

  it('canonicalizes CIDRs and CIDR sets with except', () => {
    const rule = only(cnp({
      endpointSelector: {},
      egress: [{
        toCIDR: ['192.168.1.7', '10.1.2.3/8', 'FD00::1/64'],
        toCIDRSet: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12', '10.0.0.0/8'] }, { cidr: 'fd00::/48', except: ['fd00:0:0:1::/64'] }],
      }],
    }));
    expect(rule.egress[0]!.peers).toEqual([
      { kind: 'cidr', cidr: '192.168.1.7/32', except: [] },
      { kind: 'cidr', cidr: '10.0.0.0/8', except: [] },
      { kind: 'cidr', cidr: 'fd00::/64', except: [] },
      { kind: 'cidr', cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '172.16.0.0/12'] },
      { kind: 'cidr', cidr: 'fd00::/48', except: ['fd00:0:0:1::/64'] },
    ]);
  });

  it('parses ports: numbers, number strings, named ports, ranges, protocol default ANY, port 0', () => {
    const rule = only(cnp({
      endpointSelector: {},
      egress: [{
        toPorts: [
          { ports: [{ port: '80' }, { port: 443, protocol: 'TCP' }, { port: 'http-alt', protocol: 'TCP' }] },
          { ports: [{ port: '8000', endPort: 8099, protocol: 'UDP' }, { port: 9000, endPort: 9000, protocol: 'SCTP' }, { port: '0' }] },
          {},
        ],
      }],
    }));
    expect(rule.egress[0]!.ports).toEqual([
      { protocol: 'ANY', port: 80 },
      { protocol: 'TCP', port: 443 },
      { protocol: 'TCP', port: 0, name: 'http-alt' },
      { protocol: 'UDP', port: 8000, endPort: 8099 },
      { protocol: 'SCTP', port: 9000 },
      { protocol: 'ANY', port: 0 },
      { protocol: 'ANY', port: 0 },
    ]);
    expect(rule.egress[0]!.peers).toBe('all');
  });

  it('parses icmps by number and name, IPv4 by default', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [{ icmps: [{ fields: [{ type: 8 }, { type: 'EchoRequest', family: 'IPv6' }, { type: '3' }, { type: 'TimeExceeded' }] }] }],
    }));
    expect(rule.ingress[0]!.ports).toEqual([
      { protocol: 'ICMP', port: 8 },
      { protocol: 'ICMPv6', port: 128 },
      { protocol: 'ICMP', port: 3 },
      { protocol: 'ICMP', port: 11 },
    ]);
    expect(rule.ingress[0]!.peers).toBe('all');
  });

  it('notes that ICMP type 0 covers every ICMP type', () => {
    const rule = only(cnp({ endpointSelector: {}, ingress: [{ icmps: [{ fields: [{ type: 'EchoReply' }] }] }] }));
    expect(rule.ingress[0]!.ports).toEqual([{ protocol: 'ICMP', port: 0 }]);
    expect(rule.notes).toEqual(['spec.ingress[0].icmps[0].fields[0]: ICMP type 0 (EchoReply) is enforced as every ICMP type']);
  });

  it('keeps L7 rules with their ports and notes that they are enforced at L4', () => {
    const http = { http: [{ method: 'GET', path: '/public' }] };
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: http }] }],
      egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] }],
    }));
    expect(rule.ingress[0]!.l7).toEqual([{ ports: [{ protocol: 'TCP', port: 80 }], rules: http, path: 'spec.ingress[0].toPorts[0].rules' }]);
    expect(rule.ingress[0]!.ports).toEqual([{ protocol: 'TCP', port: 80 }]);
    expect(rule.notes).toEqual([
      'spec.ingress[0].toPorts[0].rules: L7 rules are enforced at L4 until the L7 proxy is available',
      'spec.egress[0].toPorts[0].rules: L7 rules are enforced at L4 until the L7 proxy is available',
    ]);
    expect('l7' in rule.egress[0]!).toBe(true);
    expect('l7' in only(cnp({ endpointSelector: {}, ingress: [{}] })).ingress[0]!).toBe(false);
  });

  it('parses deny sections and enforces a direction that has only deny rules', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingressDeny: [{ fromEntities: ['world'] }],
      egressDeny: [{ toCIDRSet: [{ cidr: '10.0.0.0/8' }], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
    }));
    expect(rule.ingressDeny).toEqual([{ peers: [{ kind: 'entity', entity: 'world' }], ports: [], path: 'spec.ingressDeny[0]' }]);
    expect(rule.egressDeny[0]!.ports).toEqual([{ protocol: 'TCP', port: 22 }]);
    expect(rule.ingress).toEqual([]);
    expect(rule.enforces).toEqual({ ingress: true, egress: true });
  });

  it('turns off default deny per direction with enableDefaultDeny', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [{}],
      egress: [{}],
      enableDefaultDeny: { ingress: false },
    }));
    expect(rule.enforces).toEqual({ ingress: false, egress: true });
    expect(only(cnp({ endpointSelector: {}, egress: [{}], enableDefaultDeny: { egress: false, ingress: true } })).enforces)
      .toEqual({ ingress: false, egress: false });
  });

  it('does not enforce a direction whose section is absent or an empty list', () => {
    expect(only(cnp({ endpointSelector: {}, ingress: [], description: 'nothing' })).enforces).toEqual({ ingress: false, egress: false });
  });

  it('collects fromRequires/toRequires with the namespace folded in', () => {
    const rule = only(cnp({
      endpointSelector: {},
      ingress: [{ fromRequires: [{ matchLabels: { env: 'prod' } }], fromEndpoints: [{ matchLabels: { app: 'a' } }] }],
      ingressDeny: [{ fromRequires: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'z' } }], fromEntities: ['world'] }],
      egress: [{ toRequires: [{ matchExpressions: [{ key: 'k8s:team', operator: 'In', values: ['x'] }] }] }],
    }));
    expect(rule.ingressRequires).toEqual([
      { requirements: [{ key: 'any:env', operator: 'In', values: ['prod'] }, ns('x')] },
      { requirements: [ns('z')] },
    ]);
    expect(rule.egressRequires).toEqual([{ requirements: [ns('x'), { key: 'k8s:team', operator: 'In', values: ['x'] }] }]);
    // A rule with only requirements has no L3 peers of its own: it selects nothing.
    expect(rule.egress[0]!.peers).toEqual([]);
  });

  it('turns specs into one rule each with #index ids, next to spec', () => {
    const list = rules({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'multi', namespace: 'y' },
      spec: { endpointSelector: { matchLabels: { app: 'main' } } },
      specs: [
        { endpointSelector: { matchLabels: { app: 'a' } }, ingress: [{}] },
        { endpointSelector: { matchLabels: { app: 'b' } }, egress: [{ toPorts: [{ ports: [{ port: '1' }] }] }] },
      ],
    });
    expect(list.map((r) => r.id)).toEqual(['CiliumNetworkPolicy/y/multi', 'CiliumNetworkPolicy/y/multi#0', 'CiliumNetworkPolicy/y/multi#1']);
    expect(list.map((r) => r.origin.specIndex)).toEqual([undefined, 0, 1]);
    expect(list[2]!.egress[0]!.path).toBe('specs[1].egress[0]');
  });

  it('accepts a subject that names its own namespace', () => {
    const rule = only(cnp({ endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'x' } } }));
    expect(rule.subject.requirements).toEqual([ns('x')]);
  });
});
