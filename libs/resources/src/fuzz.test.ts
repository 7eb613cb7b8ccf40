import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseManifestFile } from './manifest-file.js';

// A manifest file is whatever an operator (or a tool) wrote: parsing returns objects or one
// problem with a field path, whatever the text, and never throws.
const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
  spec: { containers: [{ name: 'c', image: 'nginx', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] }] },
};
const CNP = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'p', namespace: 'shop' },
  spec: {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/public/.*' }] } }] }],
  },
};
const SERVICE = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } };

function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  const children = entries.flatMap(([k, v]) => pathsOf(v, [...prefix, k]));
  return prefix.length === 0 ? children : [prefix, ...children];
}

const mutatedDocument = fc
  .constantFrom(POD, CNP, SERVICE)
  .chain((doc) => fc.tuple(fc.constant(doc), fc.constantFrom(...pathsOf(doc)), fc.oneof(fc.jsonValue(), fc.constant(undefined))))
  .map(([doc, path, value]) => {
    const copy = structuredClone(doc) as Record<string | number, unknown>;
    let at: Record<string | number, unknown> = copy;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
    if (value === undefined) delete at[path.at(-1)!];
    else at[path.at(-1)!] = value;
    return stringify(copy);
  });

describe('manifest files, fuzzed', () => {
  it('any text, valid documents with one field changed or removed, and multi-document mixes parse or report one problem', () => {
    const file = fc.oneof(
      fc.string(),
      mutatedDocument,
      fc.array(mutatedDocument, { minLength: 2, maxLength: 4 }).map((docs) => docs.join('---\n')),
      fc.constantFrom('a: [', '&a [*a]', '*!', '!!binary x', 'x: !!js/function "f"', '['.repeat(200), 'a: &x 1\nb: *y'),
    );
    fc.assert(
      fc.property(file, (text) => {
        const r = parseManifestFile(text);
        if ('problem' in r) {
          expect(r.problem.reason).toBeTypeOf('string');
          expect(r.problem.reason.length).toBeGreaterThan(0);
        } else {
          expect(Array.isArray(r.objects)).toBe(true);
        }
      }),
      { numRuns: 600 },
    );
  });
});
