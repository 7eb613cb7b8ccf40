import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO } from '../support/agent.js';
import { KubeApiServer, kubectl, KUBECTL } from '../support/k8s-api-server/index.js';

// The test Kubernetes API server proven with a real client: Debian's kubectl 1.20 applies,
// reads, labels, replaces, watches and deletes objects through it over TLS with a bearer token,
// and the conventions the agent's informers rely on (resourceVersion, watch resumption, 410 Gone
// after compaction, bookmarks, field and label selectors, CRDs with their schema, status
// subresources, optimistic concurrency) show in what kubectl gets back.

const TOKEN = 'test-token-0123456789';
let server: KubeApiServer;
let kubeconfig: string;

const ok = async (args: string[], stdin?: string) => {
  const r = await kubectl(kubeconfig, args, stdin);
  expect(r.stderr, `kubectl ${args.join(' ')}`).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
};
const fails = async (args: string[], stdin?: string) => {
  const r = await kubectl(kubeconfig, args, stdin);
  expect(r.code, `kubectl ${args.join(' ')} should fail; printed ${r.stdout}`).not.toBe(0);
  return r.stderr.trim();
};
const json = (text: string) => JSON.parse(text) as { metadata: { resourceVersion: string; labels?: Record<string, string>; generation?: number }; items: { metadata: { name: string } }[]; [k: string]: unknown };
const yamlDocs = (...objects: object[]) => objects.map((o) => stringify(o)).join('---\n');

function pod(name: string, namespace: string, node: string, labels: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { nodeName: node, containers: [{ name: 'main', image: 'busybox', ports: [{ name: 'http', containerPort: 80 }] }] } };
}

beforeAll(async () => {
  server = new KubeApiServer({ token: TOKEN, bookmarkIntervalMs: 200 });
  await server.start();
  kubeconfig = server.writeKubeconfig();
});

afterAll(async () => {
  await server?.dispose();
});

describe('the test API server through kubectl', () => {
  it('apply, get, label, re-apply, delete: Pods, Services and NetworkPolicies, in a namespace made first', async () => {
    expect(await fails(['apply', '-f', '-'], yamlDocs(pod('web', 'shop', 'node-a', { app: 'web' })))).toBe('Error from server (NotFound): error when creating "STDIN": namespaces "shop" not found');
    expect(await ok(['create', 'namespace', 'shop'])).toBe('namespace/shop created\n');
    const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } };
    const netpol = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-web', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: {} }] }] } };
    expect(await ok(['apply', '-f', '-'], yamlDocs(pod('web', 'shop', 'node-a', { app: 'web' }), pod('db', 'shop', 'node-b', { app: 'db' }), service, netpol))).toBe(
      'pod/web created\npod/db created\nservice/web created\nnetworkpolicy.networking.k8s.io/allow-web created\n',
    );
    const svc = json(await ok(['get', 'service', 'web', '-n', 'shop', '-o', 'json']));
    expect(svc['spec']).toMatchObject({ clusterIP: expect.stringMatching(/^10\.96\./), ports: [{ port: 80, targetPort: 'http' }] });

    const before = json(await ok(['get', 'pod', 'web', '-n', 'shop', '-o', 'json']));
    expect(await ok(['label', 'pod', 'web', '-n', 'shop', 'tier=front'])).toBe('pod/web labeled\n');
    const labelled = json(await ok(['get', 'pod', 'web', '-n', 'shop', '-o', 'json']));
    expect(labelled.metadata.labels).toEqual({ app: 'web', tier: 'front' });
    expect(Number(labelled.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    // A label change is metadata: the generation stays.
    expect(labelled.metadata.generation).toBe(before.metadata.generation);
    expect(await fails(['label', 'pod', 'web', '-n', 'shop', 'tier=back'])).toBe("error: 'tier' already has a value (front), and --overwrite is false");

    // Re-applying a changed manifest: a strategic merge patch from the last applied configuration.
    const changed = pod('web', 'shop', 'node-a', { app: 'web', version: 'v2' });
    changed.spec.containers[0]!.ports.push({ name: 'metrics', containerPort: 9090 });
    expect(await ok(['apply', '-f', '-'], yamlDocs(changed))).toBe('pod/web configured\n');
    const applied = json(await ok(['get', 'pod', 'web', '-n', 'shop', '-o', 'json']));
    // The label kubectl label added survives (apply only removes what it applied itself).
    expect(applied.metadata.labels).toEqual({ app: 'web', tier: 'front', version: 'v2' });
    expect((applied['spec'] as { containers: { ports: unknown[] }[] }).containers[0]!.ports).toEqual([
      { name: 'http', containerPort: 80 },
      { name: 'metrics', containerPort: 9090 },
    ]);
    expect(applied.metadata.generation).toBe(2);

    expect(await ok(['get', 'pods', '-n', 'shop', '-l', 'app in (web,db),!canary', '-o', 'name'])).toBe('pod/db\npod/web\n');
    expect(await ok(['get', 'pods', '-A', '--field-selector', 'spec.nodeName=node-a', '-o', 'name'])).toBe('pod/web\n');
    expect(await ok(['get', 'pods', '-A', '--field-selector', 'spec.nodeName!=node-a,metadata.namespace=shop', '-o', 'name'])).toBe('pod/db\n');
    expect(await fails(['get', 'pods', '-A', '--field-selector', 'spec.image=busybox'])).toBe(
      'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label selector "", field selector "spec.image=busybox": field label not supported: spec.image',
    );

    expect(await ok(['delete', '-f', '-'], yamlDocs(netpol))).toBe('networkpolicy.networking.k8s.io "allow-web" deleted\n');
    expect(await ok(['delete', 'namespace', 'shop'])).toBe('namespace "shop" deleted\n');
    // Deleting the namespace deleted what was in it.
    expect(server.objects('v1', 'Pod', 'shop')).toEqual([]);
    // (kubectl looks the namespace up after a 404 and names it.)
    expect(await fails(['get', 'pod', 'web', '-n', 'shop'])).toBe('Error from server (NotFound): namespaces "shop" not found');
  });

  it('replace with a stale resourceVersion is a conflict', async () => {
    await ok(['create', 'configmap', 'settings', '--from-literal=a=1']);
    const current = json(await ok(['get', 'configmap', 'settings', '-o', 'json']));
    const update = (value: string, rv: string) => yamlDocs({ ...current, data: { a: value }, metadata: { ...current.metadata, resourceVersion: rv } });
    expect(await ok(['replace', '-f', '-'], update('2', current.metadata.resourceVersion))).toBe('configmap/settings replaced\n');
    expect(await fails(['replace', '-f', '-'], update('3', current.metadata.resourceVersion))).toBe(
      'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again',
    );
    expect(json(await ok(['get', 'configmap', 'settings', '-o', 'json']))['data']).toEqual({ a: '2' });
  });

  it("serves the project's CRDs: a CiliumNetworkPolicy is validated against its schema, pruned, and its status is a subresource", async () => {
    expect(await ok(['apply', '-f', join(REPO, 'deploy/kubernetes/crds')])).toBe(
      [
        'customresourcedefinition.apiextensions.k8s.io/ciliumclusterwidenetworkpolicies.cilium.io created',
        'customresourcedefinition.apiextensions.k8s.io/ciliumidentities.cilium.io created',
        'customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io created',
        'customresourcedefinition.apiextensions.k8s.io/ciliumnodes.cilium.io created',
        '',
      ].join('\n'),
    );
    const cnp = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'db-from-web', namespace: 'default' },
      spec: { endpointSelector: { matchLabels: { app: 'db' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }], unknownField: 1 },
    };
    expect(await ok(['apply', '-f', '-'], yamlDocs(cnp))).toBe('ciliumnetworkpolicy.cilium.io/db-from-web created\n');
    const stored = json(await ok(['get', 'cnp', 'db-from-web', '-o', 'json']));
    expect(stored['spec']).toEqual({ endpointSelector: { matchLabels: { app: 'db' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }] });

    const bad = { ...cnp, metadata: { name: 'bad', namespace: 'default' }, spec: { endpointSelector: 'app=db', ingress: [{}] } };
    expect(await fails(['apply', '-f', '-'], yamlDocs(bad))).toBe(
      'The CiliumNetworkPolicy "bad" is invalid: spec.endpointSelector: Invalid value: "string": spec.endpointSelector in body must be of type object: "string"',
    );
    const badOperator = { ...cnp, metadata: { name: 'bad', namespace: 'default' }, spec: { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'Equals' }] } } };
    expect(await fails(['apply', '-f', '-'], yamlDocs(badOperator))).toBe(
      'The CiliumNetworkPolicy "bad" is invalid: spec.endpointSelector.matchExpressions[0].operator: Unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"',
    );

    // Status through /status only: writes to the object itself leave it alone, and the other way round.
    const path = '/apis/cilium.io/v2/namespaces/default/ciliumnetworkpolicies/db-from-web';
    const withStatus = { ...stored, status: { nodes: { 'node-a': { enforcing: true, ok: true, localPolicyRevision: 3 } } } };
    await ok(['replace', '--raw', `${path}/status`, '-f', '-'], JSON.stringify(withStatus));
    const statusWritten = json(await ok(['get', '--raw', path]));
    expect(statusWritten['status']).toEqual(withStatus.status);
    expect(statusWritten.metadata.generation).toBe(1);
    await ok(['replace', '--raw', path, '-f', '-'], JSON.stringify({ ...statusWritten, status: {}, spec: { endpointSelector: {} } }));
    const specWritten = json(await ok(['get', '--raw', path]));
    expect(specWritten['status']).toEqual(withStatus.status);
    expect(specWritten['spec']).toEqual({ endpointSelector: {} });
    expect(specWritten.metadata.generation).toBe(2);

    // Deleting the CRD takes its objects and its resource along.
    await ok(['delete', 'crd', 'ciliumnetworkpolicies.cilium.io']);
    expect(await fails(['get', 'cnp'])).toBe('error: the server doesn\'t have a resource type "cnp"');
    await ok(['apply', '-f', join(REPO, 'deploy/kubernetes/crds/ciliumnetworkpolicies.yaml')]);
    expect(await ok(['get', 'cnp', '-A', '-o', 'name'])).toBe('');
  });

  it('watch: kubectl sees ADDED, MODIFIED and DELETED after its list, resuming from the list\'s resourceVersion', async () => {
    await ok(['create', 'namespace', 'watched']);
    await ok(['apply', '-f', '-'], yamlDocs(pod('before', 'watched', 'node-a', { app: 'x' })));
    const watch = spawn(KUBECTL, ['--kubeconfig', kubeconfig, 'get', 'pods', '-n', 'watched', '--watch', '--output-watch-events', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const events = () => out.trim().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { type: string }).type);
      await until(() => server.watchCount > 0 && events().length === 1).catch((err) => {
        throw new Error(`${String(err)}: ${out}`);
      });
      await ok(['label', 'pod', 'before', '-n', 'watched', 'seen=yes']);
      await ok(['apply', '-f', '-'], yamlDocs(pod('after', 'watched', 'node-b', { app: 'z' })));
      await ok(['delete', 'pod', 'before', '-n', 'watched']);
      await until(() => events().length === 4);
      expect(events()).toEqual(['ADDED', 'MODIFIED', 'ADDED', 'DELETED']);
      // kubectl listed, then watched from the list's resourceVersion (so nothing in between was lost).
      const w = server.requests.find((r) => r.method === 'WATCH' && r.path === '/api/v1/namespaces/watched/pods')!;
      expect(server.requests.some((r) => r.method === 'GET' && r.path === '/api/v1/namespaces/watched/pods' && r.status === 200)).toBe(true);
      expect(Number(w.query['resourceVersion'])).toBeGreaterThan(0);
    } finally {
      watch.kill();
    }
  });

  it('410 Gone for a watch from a compacted resourceVersion; bookmarks when asked for', async () => {
    const list = json(await ok(['get', '--raw', '/api/v1/pods']));
    const rv = list.metadata.resourceVersion;
    await ok(['create', 'configmap', 'tick', '-n', 'default']);
    // Before compaction: the change after `rv` is replayed, then bookmarks carry the newest resourceVersion.
    const replay = await ok(['get', '--raw', `/api/v1/configmaps?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`]);
    const events = replay.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name?: string; resourceVersion: string } } });
    expect(events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'tick' } } });
    expect(events.slice(1).map((e) => e.type)).toContain('BOOKMARK');
    expect(events.at(-1)!.object.metadata.resourceVersion).toBe(String(server.store.revision));

    server.compact();
    const gone = await ok(['get', '--raw', `/api/v1/configmaps?watch=1&resourceVersion=${rv}`]);
    expect(JSON.parse(gone)).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    // From the current resourceVersion a watch is fine.
    const fresh = await ok(['get', '--raw', `/api/v1/configmaps?watch=1&resourceVersion=${server.store.revision}&timeoutSeconds=1`]);
    expect(fresh).toBe('');
  });

  it('refuses a client without the token', async () => {
    const anonymous = server.writeKubeconfig(join(dirname(kubeconfig), 'wrong-token'), { token: 'wrong' });
    const r = await kubectl(anonymous, ['get', 'pods']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('error: You must be logged in to the server (Unauthorized)');
    expect(readFileSync(anonymous, 'utf8')).toContain('token: wrong');
  });
});

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
