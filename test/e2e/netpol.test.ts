// The network-policy e2e suite, after upstream Kubernetes' test/e2e/network/netpol: namespaces
// x, y, z with pods a, b, c each, every pair probed over real veths through the real agent's
// datapath, the expected matrix computed by an oracle of our own (test/e2e/netpol/oracle.ts) from
// the documents and the labels. One agent and one pod set serve every case; policies are reset
// between cases. Self-probes are included and always pass (a pod reaching its own address never
// leaves its netns — upstream's AllowLoopback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { NetpolCluster, until, WORLD, type ClusterPeer, type NamespaceBase } from './netpol/harness.js';
import { checkMatrix, type CheckOptions, type MatrixSpec, type ProbePort } from './netpol/matrix.js';

const TCP80: ProbePort = { protocol: 'TCP', port: 80 };
const TCP81: ProbePort = { protocol: 'TCP', port: 81 };
const UDP80: ProbePort = { protocol: 'UDP', port: 80 };
const UDP81: ProbePort = { protocol: 'UDP', port: 81 };
const ALL_PORTS = [TCP80, TCP81, UDP80, UDP81];

const CASE_TIMEOUT = 90_000;
/** Relabels change identities without a policy revision to wait for: cells may settle, both ways. */
const AFTER_RELABEL: CheckOptions = { settleMs: 20_000, strict: false };

describe('network policy e2e (upstream netpol model, real agent and datapath)', () => {
  const cluster = new NetpolCluster();
  /** What the repository holds now, as the oracle must see it. */
  let applied: unknown[] = [];

  const ns = (base: NamespaceBase) => cluster.ns(base);
  const pods = () => cluster.podPeers();
  const host = () => cluster.peer('host');
  const world = () => WORLD.map((w) => cluster.peer(w.name));
  const everyone = (): ClusterPeer[] => [...pods(), host(), ...world()];

  const netpol = (name: string, base: NamespaceBase, spec: Record<string, unknown>) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns(base) },
    spec,
  });
  const cnp = (name: string, base: NamespaceBase, spec: Record<string, unknown>) => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name, namespace: ns(base) },
    spec,
  });
  const podIs = (name: string) => ({ matchLabels: { pod: name } });

  async function apply(documents: unknown[]): Promise<void> {
    const revision = await cluster.importPolicies(documents);
    for (const d of documents as { kind: string; metadata: { name: string; namespace?: string } }[]) {
      applied = applied.filter((a) => {
        const m = a as typeof d;
        return !(m.kind === d.kind && m.metadata.name === d.metadata.name && m.metadata.namespace === d.metadata.namespace);
      });
      applied.push(d);
    }
    await cluster.waitRevision(revision);
  }

  async function expectMatrix(spec: MatrixSpec = {}, options?: CheckOptions): Promise<void> {
    const result = await checkMatrix(cluster, applied, spec, options);
    if (result.reprobed > 0) console.log(`netpol: ${result.reprobed} of ${result.cells} cells agreed only when probed again`);
    expect(result.mismatches, result.report).toEqual([]);
  }

  /** One case: a clean repository, the documents imported and realized, the matrix checked. */
  async function policyCase(documents: unknown[], spec: MatrixSpec = {}): Promise<void> {
    await cluster.resetPolicies();
    applied = [];
    await apply(documents);
    await expectMatrix(spec);
  }

  beforeAll(async () => {
    try {
      await cluster.setUp();
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent output:\n${cluster.agentOutput().slice(-4000)}`);
    }
  }, 180_000);

  afterAll(async () => {
    await cluster.tearDown();
  }, 60_000);

  it('without policy every pod reaches every pod, the host and the world clients (and they it) on TCP and UDP 80 and 81', async () => {
    await cluster.resetPolicies();
    applied = [];
    await expectMatrix({ from: everyone(), to: everyone(), ports: ALL_PORTS });
  }, CASE_TIMEOUT);

  // ---- Kubernetes NetworkPolicy ----------------------------------------------------------

  it('default deny ingress: nothing reaches namespace x but its own loopback and the host (drops counted as "Policy denied")', async () => {
    const before = cluster.dropCount('policyDenied');
    await policyCase([netpol('deny-ingress', 'x', { podSelector: {}, policyTypes: ['Ingress'] })], { from: [...pods(), host()], ports: [TCP80, UDP81] });
    expect(cluster.dropCount('policyDenied')).toBeGreaterThan(before);
  }, CASE_TIMEOUT);

  it('default deny egress: namespace x reaches nothing, not even the host', async () => {
    await policyCase([netpol('deny-egress', 'x', { podSelector: {}, policyTypes: ['Egress'] })], { to: [...pods(), host()], ports: [TCP80, UDP80] });
  }, CASE_TIMEOUT);

  it('default deny both directions', async () => {
    await policyCase([netpol('deny-all', 'x', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], { ports: [TCP80, UDP81] });
  }, CASE_TIMEOUT);

  it('allow from pods of the same namespace only', async () => {
    await policyCase([netpol('allow-same-ns', 'x', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
  }, CASE_TIMEOUT);

  it('allow from another namespace (namespaceSelector) to one pod', async () => {
    await policyCase([netpol('allow-from-y', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })]);
  }, CASE_TIMEOUT);

  it('podSelector AND namespaceSelector in one peer: only pod b of namespace y', async () => {
    await policyCase([
      netpol('allow-y-b', 'x', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['y'] }] }, podSelector: podIs('b') }] }],
      }),
    ]);
  }, CASE_TIMEOUT);

  it('podSelector OR namespaceSelector as two peers: every pod of y, and pod b of x', async () => {
    await policyCase([
      netpol('allow-y-or-b', 'x', {
        podSelector: podIs('a'),
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: podIs('b') }] }],
      }),
    ]);
  }, CASE_TIMEOUT);

  it('matchExpressions: NotIn, Exists and DoesNotExist in pod and namespace selectors', async () => {
    await policyCase([
      netpol('match-expressions', 'x', {
        podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a'] }] },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['y'] }] },
                podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }, { key: 'pod2', operator: 'DoesNotExist' }] },
              },
            ],
          },
        ],
      }),
    ]);
  }, CASE_TIMEOUT);

  it('ports: TCP 80 by number on x/a, serve-81-udp by name on x/b', async () => {
    await policyCase(
      [
        netpol('tcp-80', 'x', { podSelector: podIs('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] }),
        netpol('named-udp-81', 'x', { podSelector: podIs('b'), ingress: [{ ports: [{ protocol: 'UDP', port: 'serve-81-udp' }] }] }),
      ],
      { ports: ALL_PORTS },
    );
  }, CASE_TIMEOUT);

  it('endPort ranges: ingress TCP 80–81 from every namespace to x/a, egress UDP 81–90 from x/b', async () => {
    await policyCase(
      [
        netpol('ingress-range', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ protocol: 'TCP', port: 80, endPort: 81 }] }] }),
        netpol('egress-range', 'x', { podSelector: podIs('b'), policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 81, endPort: 90 }] }] }),
      ],
      { ports: ALL_PORTS },
    );
  }, CASE_TIMEOUT);

  it('ipBlock with except: world clients in the allowed part only; pods and the host are no CIDR', async () => {
    await policyCase(
      [
        netpol('ingress-ipblock', 'x', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }] }] }),
        netpol('egress-ipblock', 'y', {
          podSelector: podIs('b'),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.0/25'] } }] }],
        }),
      ],
      { from: everyone(), to: everyone(), ports: [TCP80, UDP80] },
    );
  }, CASE_TIMEOUT);

  it('stacked policies: the union of what each allows', async () => {
    await policyCase([
      netpol('allow-b', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] }),
      netpol('allow-z', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
    ]);
  }, CASE_TIMEOUT);

  it('a policy updated in place (same name imported again) changes the matrix', async () => {
    await policyCase([netpol('allow-one', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] })]);
    await apply([netpol('allow-one', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('c') }], ports: [{ port: 80 }] }] })]);
    await expectMatrix({ ports: [TCP80, TCP81] });
  }, CASE_TIMEOUT);

  it('an import with one invalid document is refused whole (400 naming the field) and the matrix stays', async () => {
    await policyCase([netpol('allow-b', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] })]);
    const revision = (await cluster.policies()).revision;
    const refused = await cluster.postPolicies([
      netpol('allow-b', 'x', { podSelector: podIs('a'), ingress: [{}] }),
      netpol('broken', 'y', { podSelector: {}, ingress: [{ ports: [{ protocol: 'TCP', port: 70000 }] }] }),
    ]);
    expect(refused.status).toBe(400);
    expect(refused.body.path).toBe('documents[1].spec.ingress[0].ports[0].port');
    expect((await cluster.policies()).revision).toBe(revision);
    await expectMatrix();
  }, CASE_TIMEOUT);

  it('a namespace relabelled: the endpoints follow and so does the matrix', async () => {
    await policyCase([
      netpol('allow-updated-ns', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] }),
    ]);
    try {
      await cluster.setNamespaceLabels('y', { ns: 'y', ns2: 'updated' });
      await expectMatrix({}, AFTER_RELABEL);
    } finally {
      await cluster.setNamespaceLabels('y', { ns: 'y' });
    }
    await expectMatrix({}, AFTER_RELABEL);
  }, CASE_TIMEOUT);

  it('a policy deleted: what it allowed is denied again, what the others allow stays', async () => {
    await policyCase([
      netpol('allow-b', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ podSelector: podIs('b') }] }] }),
      netpol('allow-z', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
    ]);
    const revision = await cluster.deletePolicies(`name=allow-z&namespace=${ns('x')}&kind=NetworkPolicy`);
    expect(revision, 'DELETE /v1/policy of allow-z matched nothing').toBeTypeOf('number');
    applied = applied.filter((d) => (d as { metadata: { name: string } }).metadata.name !== 'allow-z');
    await cluster.waitRevision(revision!);
    await expectMatrix();
  }, CASE_TIMEOUT);

  it('egress named port and number: x/a may send only to serve-80-udp (by name) and TCP 81 of pods', async () => {
    await policyCase(
      [
        netpol('egress-ports', 'x', {
          podSelector: podIs('a'),
          policyTypes: ['Egress'],
          egress: [{ ports: [{ protocol: 'UDP', port: 'serve-80-udp' }, { protocol: 'TCP', port: 81 }] }],
        }),
      ],
      { ports: ALL_PORTS },
    );
  }, CASE_TIMEOUT);

  it('an allow-all rule (ingress: [{}]) stacked over a deny-all opens the namespace again', async () => {
    await policyCase(
      [
        netpol('deny-all', 'x', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
        netpol('allow-all-ingress', 'x', { podSelector: {}, ingress: [{}] }),
      ],
      { from: everyone(), to: [...pods(), host()] },
    );
  }, CASE_TIMEOUT);

  it('a pod relabelled: its new labels open what the policy allows them', async () => {
    await policyCase([netpol('allow-updated-pod', 'x', { podSelector: podIs('a'), ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod2: 'updated' } } }] }] })]);
    try {
      await cluster.setPodLabels('z', 'b', { pod: 'b', pod2: 'updated' });
      await expectMatrix({}, AFTER_RELABEL);
    } finally {
      await cluster.setPodLabels('z', 'b', { pod: 'b' });
    }
    await expectMatrix({}, AFTER_RELABEL);
  }, CASE_TIMEOUT);

  it('a policy file in the manifest directory is enforced, and lifted when the file goes', async () => {
    await cluster.resetPolicies();
    applied = [];
    const doc = netpol('from-manifest', 'y', { podSelector: podIs('c'), ingress: [{ from: [{ podSelector: {} }] }] });
    const listed = async (present: boolean) =>
      until(
        `NetworkPolicy from-manifest to be ${present ? 'listed' : 'gone'} in GET /v1/policy`,
        async () => {
          const p = await cluster.policies();
          return p.rules.some((r) => r.name === 'from-manifest') === present ? p.revision : undefined;
        },
        20_000,
      );
    try {
      cluster.writeManifest('policy-from-manifest.yaml', [doc]);
      await cluster.waitRevision(await listed(true));
      applied = [doc];
      await expectMatrix();
    } finally {
      cluster.writeManifest('policy-from-manifest.yaml', undefined);
    }
    await cluster.waitRevision(await listed(false));
    applied = [];
    await expectMatrix();
  }, CASE_TIMEOUT);

  it('through the CLI: cilia policy import -f - -o json, cilia policy wait, cilia policy delete', async () => {
    await cluster.resetPolicies();
    const docs = [
      netpol('cli-deny', 'z', { podSelector: {}, policyTypes: ['Ingress'] }),
      netpol('cli-allow-x', 'z', { podSelector: podIs('c'), ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } } }] }] }),
    ];
    const imported = cluster.cli(['policy', 'import', '-f', '-', '-o', 'json'], docs.map((d) => stringify(d)).join('---\n'));
    expect(imported.status, imported.stderr).toBe(0);
    const { revision } = JSON.parse(imported.stdout) as { revision: number };
    const waited = cluster.cli(['policy', 'wait', String(revision), '--timeout', '30s']);
    expect(waited.status, waited.stderr + waited.stdout).toBe(0);
    applied = docs;
    await expectMatrix();
    const deleted = cluster.cli(['policy', 'delete', 'cli-deny', '-n', ns('z')]);
    expect(deleted.status, deleted.stderr).toBe(0);
    applied = [docs[1]!];
    await cluster.waitRevision((await cluster.policies()).revision);
    await expectMatrix();
  }, CASE_TIMEOUT);

  // ---- CiliumNetworkPolicy -----------------------------------------------------------------

  it('entities: x egresses only to world, y admits the cluster (not the world), z admits only the host', async () => {
    await policyCase(
      [
        cnp('x-to-world', 'x', { endpointSelector: {}, egress: [{ toEntities: ['world'] }] }),
        cnp('y-from-cluster', 'y', { endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }] }),
        cnp('z-from-host', 'z', { endpointSelector: {}, ingress: [{ fromEntities: ['host'] }] }),
      ],
      { from: everyone(), to: everyone() },
    );
  }, CASE_TIMEOUT);

  it('deny beats allow: ingressDeny from namespace y on TCP 80 over an allow-all; egressDeny to pod b over an allow-all (drops counted as deny-rule drops)', async () => {
    const before = cluster.dropCount('policyDeny');
    await policyCase(
      [
        cnp('x-deny-y-80', 'x', {
          endpointSelector: {},
          ingress: [{ fromEntities: ['all'] }],
          ingressDeny: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': ns('y') } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
        }),
        cnp('z-a-deny-b', 'z', { endpointSelector: podIs('a'), egress: [{ toEntities: ['all'] }], egressDeny: [{ toEndpoints: [podIs('b')] }] }),
      ],
      { ports: [TCP80, TCP81] },
    );
    expect(cluster.dropCount('policyDeny')).toBeGreaterThan(before);
  }, CASE_TIMEOUT);

  it('CIDRSet with except: fromCIDRSet on x, toCIDRSet on y/b', async () => {
    await policyCase(
      [
        cnp('x-from-cidrset', 'x', { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }] }] }),
        cnp('y-b-to-cidrset', 'y', { endpointSelector: podIs('b'), egress: [{ toCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.0/25'] }] }] }),
      ],
      { from: everyone(), to: everyone(), ports: [TCP80, UDP80] },
    );
  }, CASE_TIMEOUT);

  it('namespace labels in Cilium selectors: folded into the CNP namespace, cluster-wide in a CCNP', async () => {
    const nsLabel = (v: string) => ({ matchLabels: { 'k8s:io.cilium.k8s.namespace.labels.ns': v } });
    await policyCase([
      // Folded: pods of x whose namespace is labelled ns=x, i.e. x itself; ns=y names nobody in x.
      cnp('x-from-ns-label', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [nsLabel('x'), nsLabel('y')] }] }),
      {
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumClusterwideNetworkPolicy',
        metadata: { name: 'z-from-y-by-label' },
        spec: { endpointSelector: nsLabel('z'), ingress: [{ fromEndpoints: [nsLabel('y')] }] },
      },
    ]);
  }, CASE_TIMEOUT);

  it('fromRequires: an allow from every pod narrowed to pods labelled pod=a', async () => {
    const everyPod = { matchExpressions: [{ key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists' }] };
    await policyCase([
      cnp('x-from-pods', 'x', { endpointSelector: {}, ingress: [{ fromEndpoints: [everyPod] }] }),
      cnp('x-requires-a', 'x', { endpointSelector: {}, ingress: [{ fromRequires: [{ ...everyPod, matchLabels: { pod: 'a' } }] }] }),
    ]);
  }, CASE_TIMEOUT);
  it('an empty CNP rule enforces and allows nothing; enableDefaultDeny false allows without denying the rest, and its deny rules still deny; L4-only ANY opens a port for all', async () => {
    await policyCase(
      [
        cnp('x-empty-rule', 'x', { endpointSelector: {}, ingress: [{}] }),
        cnp('y-no-default-deny', 'y', { endpointSelector: {}, enableDefaultDeny: { ingress: false }, ingress: [{ fromEndpoints: [podIs('a')] }] }),
        // Deny-only without default deny: port 80/TCP from pods b is refused, the rest passes.
        cnp('z-deny-only', 'z', {
          endpointSelector: podIs('a'),
          enableDefaultDeny: { ingress: false },
          ingressDeny: [{ fromEndpoints: [{ matchExpressions: [{ key: 'k8s:io.kubernetes.pod.namespace', operator: 'Exists' }], matchLabels: { pod: 'b' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
        }),
        cnp('z-port-81', 'z', { endpointSelector: podIs('c'), ingress: [{ toPorts: [{ ports: [{ port: '81' }] }] }] }),
      ],
      { from: [...pods(), host(), ...world()], ports: ALL_PORTS },
    );
  }, CASE_TIMEOUT);

  it('a CiliumClusterwideNetworkPolicy with specs: pods c of every namespace admit pods a of every namespace, pods b admit the world only', async () => {
    await policyCase(
      [
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumClusterwideNetworkPolicy',
          metadata: { name: 'ccnp-specs' },
          specs: [
            { endpointSelector: podIs('c'), ingress: [{ fromEndpoints: [podIs('a')] }] },
            { endpointSelector: podIs('b'), ingress: [{ fromEntities: ['world'] }] },
          ],
        },
      ],
      { from: everyone(), to: pods() },
    );
  }, CASE_TIMEOUT);
  it('policy keeps being enforced while the agent is down (SIGKILL) and after it restarts (API imports restored)', async () => {
    await policyCase(
      [
        netpol('deny-ingress', 'y', { podSelector: {}, policyTypes: ['Ingress'] }),
        cnp('y-a-from-x', 'y', { endpointSelector: podIs('a'), ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': ns('x') } }] }] }),
      ],
      { ports: [TCP80, UDP80] },
    );
    await cluster.stopAgent('SIGKILL');
    // The pinned maps carry on without the agent.
    await expectMatrix({ ports: [TCP80, UDP80] });
    await cluster.startAgent();
    await cluster.waitRevision((await cluster.policies()).revision);
    expect((await cluster.policies()).rules.map((r) => r.name).sort()).toEqual(['deny-ingress', 'y-a-from-x']);
    await expectMatrix({ ports: [TCP80, UDP80] });
  }, CASE_TIMEOUT);
});
