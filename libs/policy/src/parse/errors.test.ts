import { describe, expect, it } from 'vitest';
import { parsePolicyDocument, PolicyValidationError } from './index.js';

const cnp = (spec: unknown) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p', namespace: 'x' }, spec });
const ccnp = (spec: unknown, metadata: unknown = { name: 'c' }) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata, spec });
const np = (spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'n', namespace: 'x' }, spec });
const ingress = (rule: unknown) => cnp({ endpointSelector: {}, ingress: [rule] });
const egress = (rule: unknown) => cnp({ endpointSelector: {}, egress: [rule] });
const port = (p: unknown) => ingress({ toPorts: [{ ports: [p] }] });
const npIngress = (rule: unknown) => np({ podSelector: {}, ingress: [rule] });

function errorsOf(doc: unknown, path?: string) {
  const result = parsePolicyDocument(doc, path === undefined ? {} : { path });
  if (result.ok) throw new Error('expected errors, got rules');
  return result.errors;
}

// [what, document, path of the expected error, pattern its reason matches]
const cases: [string, unknown, string, RegExp][] = [
  ['not an object', 42, 'document', /must be a policy document object/],
  ['null', null, 'document', /got null/],
  ['missing apiVersion', { kind: 'NetworkPolicy', metadata: { name: 'n' }, spec: { podSelector: {} } }, 'apiVersion', /required/],
  ['unknown apiVersion', { apiVersion: 'cilium.io/v1', kind: 'CiliumNetworkPolicy' }, 'apiVersion', /unsupported.*cilium\.io\/v2/],
  ['kind under the wrong apiVersion', { apiVersion: 'cilium.io/v2', kind: 'NetworkPolicy', metadata: { name: 'n' }, spec: { podSelector: {} } }, 'apiVersion', /NetworkPolicy is networking\.k8s\.io\/v1/],
  ['unknown kind', { apiVersion: 'cilium.io/v2', kind: 'CiliumPolicy' }, 'kind', /unsupported.*CiliumNetworkPolicy/],
  ['missing metadata', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', spec: { endpointSelector: {} } }, 'metadata', /required/],
  ['missing name', { ...cnp({ endpointSelector: {} }), metadata: {} }, 'metadata.name', /required/],
  ['invalid name', { ...cnp({ endpointSelector: {} }), metadata: { name: 'Bad_Name' } }, 'metadata.name', /not a DNS subdomain/],
  ['invalid namespace', { ...cnp({ endpointSelector: {} }), metadata: { name: 'p', namespace: 'a.b' } }, 'metadata.namespace', /not a DNS label/],
  ['namespace on a CCNP', ccnp({ endpointSelector: {} }, { name: 'c', namespace: 'x' }), 'metadata.namespace', /cluster-wide policy has no namespace/],
  ['no spec', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p' } }, 'spec', /a spec, or a non-empty specs/],
  ['empty specs', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p' }, specs: [] }, 'specs', /must not be empty/],
  ['specs item not an object', { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'p' }, specs: [{ endpointSelector: {} }, 'x'] }, 'specs[1]', /must be an object/],
  ['unknown top-level field', { ...cnp({ endpointSelector: {} }), extra: 1 }, 'extra', /unknown field/],
  ['missing endpointSelector', cnp({ ingress: [{}] }), 'spec.endpointSelector', /required/],
  ['nodeSelector', cnp({ nodeSelector: {} }), 'spec.nodeSelector', /not supported yet/],
  ['subject in another namespace', cnp({ endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'y' } } }), 'spec.endpointSelector', /applies only to endpoints of x/],
  ['unknown spec field (typo)', cnp({ endpointSelector: {}, ingres: [] }), 'spec.ingres', /unknown field/],
  ['selector not an object', cnp({ endpointSelector: 'app=web' }), 'spec.endpointSelector', /label selector object/],
  ['matchLabels value not a string', cnp({ endpointSelector: { matchLabels: { version: 2 } } }), 'spec.endpointSelector.matchLabels.version', /must be a string/],
  ['matchLabels invalid value', cnp({ endpointSelector: { matchLabels: { app: 'a b' } } }), 'spec.endpointSelector.matchLabels.app', /not a valid label value/],
  ['matchLabels invalid key', cnp({ endpointSelector: { matchLabels: { 'bad key!': 'a' } } }), 'spec.endpointSelector.matchLabels["bad key!"]', /not a valid label key/],
  ['invalid label source', cnp({ endpointSelector: { matchLabels: { ':app': 'a' } } }), 'spec.endpointSelector.matchLabels[":app"]', /invalid label source/],
  ['unknown operator', ingress({ fromEndpoints: [{}, { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['a'] }] }] }), 'spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator', /must be one of In, NotIn, Exists, DoesNotExist/],
  ['In without values', ingress({ fromEndpoints: [{ matchExpressions: [{ key: 'app', operator: 'In', values: [] }] }] }), 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].values', /at least one value/],
  ['NotIn without values', ingress({ fromEndpoints: [{ matchExpressions: [{ key: 'app', operator: 'NotIn' }] }] }), 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].values', /at least one value/],
  ['Exists with values', ingress({ fromEndpoints: [{ matchExpressions: [{ key: 'app', operator: 'Exists', values: ['a'] }] }] }), 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].values', /must be empty/],
  ['expression without key', ingress({ fromEndpoints: [{ matchExpressions: [{ operator: 'Exists' }] }] }), 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].key', /required/],
  ['expression value not a string', ingress({ fromEndpoints: [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 3] }] }] }), 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].values[1]', /must be a string/],
  ['ingress not a list', cnp({ endpointSelector: {}, ingress: {} }), 'spec.ingress', /must be a list/],
  ['rule not an object', cnp({ endpointSelector: {}, egress: [null] }), 'spec.egress[0]', /must be an object/],
  ['to* field in ingress', ingress({ toEndpoints: [{}] }), 'spec.ingress[0].toEndpoints', /unknown field/],
  ['toFQDNs', egress({ toFQDNs: [{ matchName: 'example.com' }] }), 'spec.egress[0].toFQDNs', /not supported yet/],
  ['unknown entity', egress({ toEntities: ['world', 'everyone'] }), 'spec.egress[0].toEntities[1]', /unknown entity.*all, world, cluster, host, remote-node, health, init, unmanaged, kube-apiserver, ingress/],
  ['invalid CIDR', ingress({ fromCIDR: ['10.0.0.0/33'] }), 'spec.ingress[0].fromCIDR[0]', /invalid prefix length/],
  ['CIDR not a string', ingress({ fromCIDR: [10] }), 'spec.ingress[0].fromCIDR[0]', /CIDR string/],
  ['garbage CIDR', ingress({ fromCIDR: ['ten/8'] }), 'spec.ingress[0].fromCIDR[0]', /not a CIDR/],
  ['CIDRSet without cidr', ingress({ fromCIDRSet: [{ except: [] }] }), 'spec.ingress[0].fromCIDRSet[0].cidr', /required/],
  ['except outside cidr', egress({ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '192.168.0.0/16'] }] }), 'spec.egress[0].toCIDRSet[0].except[1]', /192\.168\.0\.0\/16 is not inside 10\.0\.0\.0\/8/],
  ['except wider than cidr', egress({ toCIDRSet: [{ cidr: '10.1.0.0/16', except: ['10.0.0.0/8'] }] }), 'spec.egress[0].toCIDRSet[0].except[0]', /not inside/],
  ['except of another family', egress({ toCIDRSet: [{ cidr: '0.0.0.0/0', except: ['::/0'] }] }), 'spec.egress[0].toCIDRSet[0].except[0]', /not inside/],
  ['cidrGroupRef', egress({ toCIDRSet: [{ cidrGroupRef: 'g' }] }), 'spec.egress[0].toCIDRSet[0].cidrGroupRef', /not supported yet/],
  ['port out of range', port({ port: '65536' }), 'spec.ingress[0].toPorts[0].ports[0].port', /out of range/],
  ['negative port', port({ port: -1 }), 'spec.ingress[0].toPorts[0].ports[0].port', /0–65535/],
  ['fractional port', port({ port: 80.5 }), 'spec.ingress[0].toPorts[0].ports[0].port', /0–65535/],
  ['named port too long', port({ port: 'a-very-long-port-name' }), 'spec.ingress[0].toPorts[0].ports[0].port', /at most 15/],
  ['named port uppercase', port({ port: 'HTTP' }), 'spec.ingress[0].toPorts[0].ports[0].port', /lowercase/],
  ['named port with --', port({ port: 'a--b' }), 'spec.ingress[0].toPorts[0].ports[0].port', /'--'/],
  ['endPort below port', port({ port: '90', endPort: 80 }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /≥ port \(90\)/],
  ['endPort with named port', port({ port: 'http', endPort: 90 }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /numeric port/],
  ['endPort with port 0', port({ port: 0, endPort: 90 }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /port 0 means every port/],
  ['endPort out of range', port({ port: 1, endPort: 70000 }), 'spec.ingress[0].toPorts[0].ports[0].endPort', /1–65535/],
  ['unknown protocol', port({ port: '80', protocol: 'tcp' }), 'spec.ingress[0].toPorts[0].ports[0].protocol', /TCP, UDP, SCTP, ANY/],
  ['ICMP as a toPorts protocol', port({ port: '8', protocol: 'ICMP' }), 'spec.ingress[0].toPorts[0].ports[0].protocol', /TCP, UDP, SCTP, ANY/],
  ['toPorts listener', ingress({ toPorts: [{ ports: [{ port: '80' }], listener: { name: 'x' } }] }), 'spec.ingress[0].toPorts[0].listener', /not supported yet/],
  ['L7 rules in a deny rule', cnp({ endpointSelector: {}, ingressDeny: [{ toPorts: [{ ports: [{ port: '80' }], rules: { http: [{}] } }] }] }), 'spec.ingressDeny[0].toPorts[0].rules', /deny rules cannot carry L7 rules/],
  ['L7 rules of two kinds', ingress({ toPorts: [{ ports: [{ port: '80' }], rules: { http: [{}], kafka: [{}] } }] }), 'spec.ingress[0].toPorts[0].rules', /only one kind of L7 rules/],
  ['L7 rules not a list', ingress({ toPorts: [{ ports: [{ port: '80' }], rules: { http: {} } }] }), 'spec.ingress[0].toPorts[0].rules.http', /must be a list/],
  ['L7 rules without ports', ingress({ toPorts: [{ rules: { http: [{}] } }] }), 'spec.ingress[0].toPorts[0].ports', /at least one port/],
  ['icmps with toPorts', ingress({ toPorts: [{ ports: [{ port: '80' }] }], icmps: [{ fields: [{ type: 8 }] }] }), 'spec.ingress[0].icmps', /cannot be combined with toPorts/],
  ['ICMP type out of range', ingress({ icmps: [{ fields: [{ type: 256 }] }] }), 'spec.ingress[0].icmps[0].fields[0].type', /0–255/],
  ['unknown ICMP type name', ingress({ icmps: [{ fields: [{ type: 'Ping' }] }] }), 'spec.ingress[0].icmps[0].fields[0].type', /unknown IPv4 ICMP type "Ping"/],
  ['IPv4 name under IPv6', ingress({ icmps: [{ fields: [{ type: 'Redirect', family: 'IPv6' }] }] }), 'spec.ingress[0].icmps[0].fields[0].type', /unknown IPv6 ICMP type/],
  ['unknown ICMP family', ingress({ icmps: [{ fields: [{ type: 8, family: 'IPv5' }] }] }), 'spec.ingress[0].icmps[0].fields[0].family', /IPv4 or IPv6/],
  ['icmps without fields', ingress({ icmps: [{}] }), 'spec.ingress[0].icmps[0].fields', /required/],
  ['enableDefaultDeny not boolean', cnp({ endpointSelector: {}, enableDefaultDeny: { ingress: 'no' } }), 'spec.enableDefaultDeny.ingress', /true or false/],
  ['description not a string', cnp({ endpointSelector: {}, description: 5 }), 'spec.description', /must be a string/],
  ['NetworkPolicy without spec', { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'n' } }, 'spec', /required/],
  ['NetworkPolicy without podSelector', np({ ingress: [] }), 'spec.podSelector', /required/],
  ['NetworkPolicy prefixed pod key', np({ podSelector: { matchLabels: { 'k8s:app': 'a' } } }), 'spec.podSelector.matchLabels["k8s:app"]', /not a valid label key/],
  ['unknown policyType', np({ podSelector: {}, policyTypes: ['Ingress', 'Sideways'] }), 'spec.policyTypes[1]', /Ingress or Egress/],
  ['duplicate policyType', np({ podSelector: {}, policyTypes: ['Egress', 'Egress'] }), 'spec.policyTypes[1]', /listed twice/],
  ['empty peer', npIngress({ from: [{}] }), 'spec.ingress[0].from[0]', /podSelector, namespaceSelector or ipBlock/],
  ['ipBlock with a selector', npIngress({ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }), 'spec.ingress[0].from[0].ipBlock', /cannot be combined/],
  ['ipBlock without cidr', npIngress({ from: [{ ipBlock: {} }] }), 'spec.ingress[0].from[0].ipBlock.cidr', /required/],
  ['ipBlock bare address', npIngress({ from: [{ ipBlock: { cidr: '10.0.0.1' } }] }), 'spec.ingress[0].from[0].ipBlock.cidr', /not a CIDR/],
  ['ipBlock except equal to cidr', npIngress({ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }] }), 'spec.ingress[0].from[0].ipBlock.except[0]', /strict subset/],
  ['egress peer under from', np({ podSelector: {}, egress: [{ from: [] }] }), 'spec.egress[0].from', /unknown field/],
  ['k8s port 0', npIngress({ ports: [{ port: 0 }] }), 'spec.ingress[0].ports[0].port', /1–65535/],
  ['k8s quoted port number', npIngress({ ports: [{ port: '80' }] }), 'spec.ingress[0].ports[0].port', /at least one letter/],
  ['k8s protocol ANY', npIngress({ ports: [{ port: 80, protocol: 'ANY' }] }), 'spec.ingress[0].ports[0].protocol', /TCP, UDP, SCTP/],
  ['k8s endPort without port', npIngress({ ports: [{ endPort: 90 }] }), 'spec.ingress[0].ports[0].endPort', /needs a numeric port/],
  ['k8s endPort with named port', npIngress({ ports: [{ port: 'http', endPort: 90 }] }), 'spec.ingress[0].ports[0].endPort', /numeric port/],
  ['k8s endPort below port', npIngress({ ports: [{ port: 100, endPort: 90 }] }), 'spec.ingress[0].ports[0].endPort', /≥ port/],
];

describe('parse errors', () => {
  it.each(cases)('%s', (_what, doc, path, reason) => {
    const errors = errorsOf(doc);
    const match = errors.find((e) => e.path === path);
    expect(match, `errors: ${JSON.stringify(errors)}`).toBeDefined();
    expect(match!.reason).toMatch(reason);
  });

  it('collects every error of a document, not just the first', () => {
    const errors = errorsOf({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'BAD' },
      spec: {
        endpointSelector: { matchExpressions: [{ key: 'a', operator: 'Nope' }] },
        ingress: [{ fromEntities: ['nobody'], toPorts: [{ ports: [{ port: '99999' }] }] }],
        egress: [{ toCIDR: ['x'] }],
      },
    });
    expect(errors.map((e) => e.path)).toEqual([
      'metadata.name',
      'spec.endpointSelector.matchExpressions[0].operator',
      'spec.ingress[0].fromEntities[0]',
      'spec.ingress[0].toPorts[0].ports[0].port',
      'spec.egress[0].toCIDR[0]',
    ]);
  });

  it('prefixes every path with options.path', () => {
    expect(errorsOf(port({ port: 'X' }), 'documents[3]')[0]!.path).toBe('documents[3].spec.ingress[0].toPorts[0].ports[0].port');
    expect(errorsOf('nope', 'documents[0]')[0]!.path).toBe('documents[0]');
  });

  it('caps a flood of errors and says how many were left out', () => {
    const errors = errorsOf(egress({ toEntities: Array.from({ length: 100_000 }, () => 'nobody') }));
    expect(errors.length).toBeLessThanOrEqual(201);
    expect(errors.at(-1)).toEqual({ path: 'document', reason: '99800 more errors not listed' });
  });
});

describe('PolicyValidationError', () => {
  it('names the first error and how many more there are', () => {
    const error = new PolicyValidationError([
      { path: 'documents[0].spec.ingress[0].fromCIDR[0]', reason: 'bad' },
      { path: 'documents[1].kind', reason: 'worse' },
      { path: 'documents[1].metadata', reason: 'worst' },
    ]);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('PolicyValidationError');
    expect(error.message).toBe('documents[0].spec.ingress[0].fromCIDR[0]: bad (and 2 more)');
    expect(error.errors).toHaveLength(3);
    expect(new PolicyValidationError([{ path: 'kind', reason: 'required' }]).message).toBe('kind: required');
  });
});
