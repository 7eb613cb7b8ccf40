import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ParseResult } from '../model.js';
import { parsePolicyDocument } from './index.js';

/** Valid documents touching every construct; the mutations start from these. */
const VALID: readonly unknown[] = [
  {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'all-features', namespace: 'x' },
    spec: {
      endpointSelector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'k8s:tier', operator: 'In', values: ['a', 'b'] }] },
      ingress: [
        { fromEndpoints: [{ matchLabels: { pod: 'a' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }] },
        { fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }], fromEntities: ['world'] },
        { fromRequires: [{ matchLabels: { env: 'prod' } }], icmps: [{ fields: [{ type: 'EchoRequest', family: 'IPv6' }] }] },
        {},
      ],
      ingressDeny: [{ fromCIDR: ['192.168.0.0/16'], toPorts: [{ ports: [{ port: '22', endPort: 23 }] }] }],
      egress: [{ toEndpoints: [{}], toPorts: [{ ports: [{ port: 'dns', protocol: 'UDP' }] }] }],
      egressDeny: [{ toEntities: ['host'] }],
      enableDefaultDeny: { ingress: true, egress: false },
      description: 'every construct',
    },
  },
  {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumClusterwideNetworkPolicy',
    metadata: { name: 'cluster' },
    specs: [
      { endpointSelector: {}, egress: [{ toCIDR: ['fd00::/64'], toPorts: [{ ports: [{ port: 443 }] }] }] },
      { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, ingress: [{ fromEntities: ['cluster'] }] },
    ],
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'k8s', namespace: 'y' },
    spec: {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: {}, namespaceSelector: { matchLabels: { ns: 'x' } } }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/24'] } }], ports: [{ port: 80 }, { protocol: 'UDP', port: 'serve-81-udp' }] }],
      egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 8000, endPort: 8080 }] }, {}],
    },
  },
];

/** Values close to valid ones, so mutations reach deep validation paths, not only type checks. */
const nearValid = fc.oneof(
  fc.anything(),
  fc.constantFrom('', '0', '80', '65535', '65536', 'http', 'In', 'NotIn', 'Exists', 'DoesNotExist', '10.0.0.0/8', '10.0.0.0/33', '::/0',
    'world', 'nobody', 'TCP', 'ANY', 'ICMP', 'k8s:app', ':x', 'EchoRequest', 'IPv6', 'Ingress', 'Egress', [], {}, [{}], null),
  fc.integer({ min: -2, max: 70_000 }),
);

/** Field names of every policy kind, so random trees often hit real fields at every depth. */
const FIELD_NAMES = [
  'endpointSelector', 'matchLabels', 'matchExpressions', 'key', 'operator', 'values', 'ingress', 'egress', 'ingressDeny',
  'egressDeny', 'fromEndpoints', 'toEndpoints', 'fromRequires', 'toRequires', 'fromCIDR', 'toCIDR', 'fromCIDRSet', 'toCIDRSet',
  'cidr', 'except', 'fromEntities', 'toEntities', 'toPorts', 'ports', 'port', 'endPort', 'protocol', 'rules', 'http', 'dns',
  'icmps', 'fields', 'type', 'family', 'enableDefaultDeny', 'podSelector', 'namespaceSelector', 'ipBlock', 'from', 'to',
  'policyTypes', 'app', 'k8s:app',
];

const { tree } = fc.letrec<{ tree: unknown }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nearValid,
    fc.array(tie('tree'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...FIELD_NAMES), tie('tree'), { maxKeys: 4 }),
  ),
}));

/** Documents with a real apiVersion/kind/metadata and a random tree of real field names as spec. */
const shaped = fc.record({
  apiVersion: fc.constantFrom('cilium.io/v2', 'networking.k8s.io/v1'),
  kind: fc.constantFrom('CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'),
  metadata: fc.oneof(fc.constant({ name: 'p', namespace: 'x' }), fc.constant({ name: 'p' }), tree),
  spec: tree,
});

type Json = unknown;
type Path = readonly (string | number)[];

function paths(value: Json, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((item, i) => paths(item, [...prefix, i], out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

type Mutation = { kind: 'replace'; value: unknown } | { kind: 'delete' } | { kind: 'add'; key: string; value: unknown };

function mutate(doc: Json, path: Path, mutation: Mutation): Json {
  if (path.length === 0) {
    if (mutation.kind === 'replace') return mutation.value;
    if (mutation.kind === 'add' && doc && typeof doc === 'object' && !Array.isArray(doc)) return { ...doc, [mutation.key]: mutation.value };
    return mutation.kind === 'delete' ? undefined : doc;
  }
  const [head, ...rest] = path;
  if (Array.isArray(doc)) {
    const copy = [...doc];
    if (rest.length === 0 && mutation.kind === 'delete') copy.splice(head as number, 1);
    else copy[head as number] = mutate(copy[head as number], rest, mutation);
    return copy;
  }
  const object = { ...(doc as Record<string, unknown>) };
  if (rest.length === 0 && mutation.kind === 'delete') delete object[head as string];
  else object[head as string] = mutate(object[head as string], rest, mutation);
  return object;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), value: nearValid }),
  fc.record({ kind: fc.constant('delete' as const) }),
  fc.record({ kind: fc.constant('add' as const), key: fc.constantFrom('extra', 'toPorts', 'fromEndpoints', 'rules', 'endPort', 'except', 'nodeSelector', 'namespace'), value: nearValid }),
);

/** A mutated document: several mutations at random paths of a valid one. */
const mutated = fc
  .tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 4 }))
  .map(([doc, steps]) => steps.reduce((current, [pick, m]) => {
    const all = paths(current);
    return mutate(current, all[pick % all.length]!, m);
  }, doc));

function expectWellFormed(result: ParseResult): void {
  if (result.ok) {
    for (const rule of result.rules) {
      expect(typeof rule.id).toBe('string');
      expect(rule.subject.requirements).toBeInstanceOf(Array);
    }
    return;
  }
  expect(result.errors.length).toBeGreaterThan(0);
  for (const error of result.errors) {
    expect(typeof error.path).toBe('string');
    expect(error.path.length).toBeGreaterThan(0);
    expect(typeof error.reason).toBe('string');
    expect(error.reason.length).toBeGreaterThan(0);
    expect(error.reason).not.toMatch(/internal parser error/);
  }
}

describe('parsePolicyDocument on arbitrary input', () => {
  it('parses the seed documents', () => {
    for (const doc of VALID) expect(parsePolicyDocument(doc).ok).toBe(true);
  });

  it('never throws on anything, and returns rules or located errors', () => {
    const anything = fc.anything({
      withBoxedValues: true, withNullPrototype: true, withSparseArray: true, withMap: true, withSet: true, withDate: true,
      withTypedArray: true, withBigInt: true, withObjectString: true,
    });
    fc.assert(fc.property(anything, (doc) => expectWellFormed(parsePolicyDocument(doc))), { numRuns: 500 });
  });

  it('never throws on mutated valid documents, and returns rules or located errors', () => {
    fc.assert(fc.property(mutated, (doc) => expectWellFormed(parsePolicyDocument(doc, { path: 'documents[0]' }))), { numRuns: 1500 });
  });

  it('never throws on documents with random trees of real field names', () => {
    fc.assert(fc.property(shaped, (doc) => expectWellFormed(parsePolicyDocument(doc))), { numRuns: 1500 });
  });

  it('mutations that keep a document valid keep its requirements canonical', () => {
    fc.assert(
      fc.property(mutated, (doc) => {
        const result = parsePolicyDocument(doc);
        if (!result.ok) return;
        for (const rule of result.rules) {
          const keys = rule.subject.requirements.map((r) => `${r.key}\u0001${r.operator}\u0001${r.values.join('\u0000')}`);
          expect(keys).toEqual([...new Set(keys)].sort());
        }
      }),
      { numRuns: 500 },
    );
  });

  it('survives deep nesting and huge lists', () => {
    let deep: unknown = { http: [] };
    for (let i = 0; i < 100_000; i++) deep = { nested: deep };
    const doc = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'deep' },
      spec: {
        endpointSelector: {},
        ingress: [{ toPorts: [{ ports: [{ port: '80' }], rules: { http: [deep] } }] }],
        egress: Array.from({ length: 50_000 }, () => ({ toEndpoints: [{}] })),
        unknown: deep,
      },
    };
    const result = parsePolicyDocument(doc);
    expect(result).toEqual({ ok: false, errors: [{ path: 'spec.unknown', reason: expect.stringMatching(/unknown field/) }] });
    const { unknown: _ignored, ...spec } = doc.spec;
    const ok = parsePolicyDocument({ ...doc, spec });
    expect(ok.ok && ok.rules[0]!.egress.length).toBe(50_000);
  });
});
