import { describe, expect, it } from 'vitest';
import { parseManifestFile } from './manifest-file.js';

const pod = (labels = '    app: web') => `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
${labels}
spec:
  containers:
    - name: main
      image: nginx
      ports:
        - name: http
          containerPort: 80
        - containerPort: 53
          protocol: UDP
`;

function problemOf(text: string) {
  const result = parseManifestFile(text);
  if (!('problem' in result)) throw new Error(`expected a problem, got ${JSON.stringify(result)}`);
  return result.problem;
}

describe('parseManifestFile', () => {
  it('reads a Pod: namespace defaulted, named ports kept, protocol defaulted, unknown fields kept', () => {
    const result = parseManifestFile(pod());
    if ('problem' in result) throw new Error(result.problem.reason);
    expect(result.objects).toHaveLength(1);
    const [o] = result.objects;
    expect(o!.ref).toEqual({ kind: 'Pod', namespace: 'default', name: 'web' });
    expect(o!.object.metadata).toEqual({ name: 'web', namespace: 'default', labels: { app: 'web' } });
    const spec = o!.object.spec as { containers: { image: string; ports: unknown[] }[] };
    expect(spec.containers[0]!.image).toBe('nginx');
    expect(spec.containers[0]!.ports).toEqual([
      { name: 'http', containerPort: 80, protocol: 'TCP' },
      { containerPort: 53, protocol: 'UDP' },
    ]);
    expect(Object.isFrozen(o!.object.metadata)).toBe(true);
  });

  it('reads every document of a multi-document file and skips empty ones', () => {
    const text = `---\napiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\n${pod()}---\n# nothing\n`;
    const result = parseManifestFile(text);
    if ('problem' in result) throw new Error(result.problem.reason);
    expect(result.objects.map((o) => [o.ref, o.documentPath])).toEqual([
      [{ kind: 'Namespace', name: 'shop' }, '[0]'],
      [{ kind: 'Pod', namespace: 'default', name: 'web' }, '[1]'],
    ]);
  });

  it('accepts the kinds later issues consume as opaque objects', () => {
    const text = [
      'apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\nspec: { ports: [{ port: 80 }] }',
      'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: web-abc }',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: deny }\nspec: {}',
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: l7 }\nspec: { endpointSelector: {} }',
    ].join('\n---\n');
    const result = parseManifestFile(text);
    if ('problem' in result) throw new Error(result.problem.reason);
    expect(result.objects.map((o) => o.ref.kind)).toEqual(['Service', 'EndpointSlice', 'NetworkPolicy', 'CiliumNetworkPolicy']);
    expect(result.objects[0]!.object.spec).toEqual({ ports: [{ port: 80 }] });
  });

  it('names the field path, the reason and the line of a wrong field', () => {
    expect(problemOf(pod('    app: 5'))).toEqual({ path: 'metadata.labels.app', reason: expect.stringContaining('expected string'), line: 6 });
  });

  it('prefixes the document index in a multi-document file', () => {
    const text = `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\n${pod('    app: [x]')}`;
    expect(problemOf(text)).toMatchObject({ path: '[1].metadata.labels.app', reason: expect.stringContaining('expected string') });
  });

  it.each([
    ['a missing name', 'apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: { containers: [{ name: a }] }', 'metadata.name', 'expected string'],
    ['an unsupported kind', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: a }', 'kind', 'unsupported kind "Deployment"'],
    ['a wrong apiVersion', 'apiVersion: v2\nkind: Pod\nmetadata: { name: a }', 'apiVersion', 'expected "v1" for kind Pod'],
    ['a missing apiVersion', 'kind: Pod\nmetadata: { name: a }', 'apiVersion', 'expected string'],
    ['a Pod without containers', 'apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { containers: [] }', 'spec.containers', '>=1'],
    ['a bad Pod name', 'apiVersion: v1\nkind: Pod\nmetadata: { name: Web_1 }\nspec: { containers: [{ name: a }] }', 'metadata.name', 'DNS subdomain'],
    ['a bad label key', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: a, labels: { "-x": y } }', 'metadata.labels.-x', 'label key'],
    ['a bad label value', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: a, labels: { x: "a b" } }', 'metadata.labels.x', 'must be empty or letters'],
    ['a namespace on a cluster-scoped kind', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: a, namespace: b }', 'metadata.namespace', 'cluster-scoped'],
    [
      'a port out of range',
      'apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { containers: [{ name: a, ports: [{ containerPort: 70000 }] }] }',
      'spec.containers[0].ports[0].containerPort',
      '<=65535',
    ],
    [
      'a bad protocol',
      'apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { containers: [{ name: a, ports: [{ containerPort: 1, protocol: ICMP }] }] }',
      'spec.containers[0].ports[0].protocol',
      'TCP',
    ],
    [
      'a duplicate port name',
      'apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { containers: [{ name: a, ports: [{ name: http, containerPort: 1 }] }, { name: b, ports: [{ name: http, containerPort: 2 }] }] }',
      'spec.containers[1].ports[0].name',
      'duplicate port name "http"',
    ],
    [
      'a port name too long',
      'apiVersion: v1\nkind: Pod\nmetadata: { name: a }\nspec: { containers: [{ name: a, ports: [{ name: a-very-long-port-name, containerPort: 1 }] }] }',
      'spec.containers[0].ports[0].name',
      '<=15',
    ],
    ['a document that is not a mapping', '- a\n- b\n', '', 'expected a mapping'],
    ['the same object twice', `${pod()}---\n${pod()}`, '[1].metadata.name', 'Pod default/web is defined twice in this file (also [0])'],
  ])('refuses %s', (_what, text, path, reason) => {
    const problem = problemOf(text);
    expect(problem.path).toBe(path);
    expect(problem.reason).toContain(reason);
  });

  it('reports a YAML syntax error with its line', () => {
    const problem = problemOf('apiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n');
    expect(problem.path).toBe('');
    expect(problem.reason).toMatch(/^YAML syntax: /);
    expect(problem.line).toBeGreaterThanOrEqual(4);
  });

  it('refuses duplicate keys', () => {
    expect(problemOf('apiVersion: v1\nkind: Namespace\nkind: Pod\nmetadata: { name: a }').reason).toMatch(/unique/);
  });

  it('takes an empty file as no objects', () => {
    expect(parseManifestFile('')).toEqual({ objects: [] });
    expect(parseManifestFile('# just a comment\n')).toEqual({ objects: [] });
  });
});
