import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AGENT_MAIN, REPO } from '../support/agent.js';
import { KubeApiServer, kubectl } from '../support/k8s-api-server/index.js';

// The install manifests under deploy/kubernetes: kubectl accepts every one (client dry run, then
// a real apply to the test API server), the ConfigMap's agent config is one the agent accepts,
// and the DaemonSet's CNI install (init container) and uninstall (preStop) scripts, run against
// a scratch host root, write a cilia-cni that answers a runtime's VERSION call and remove it.

const DEPLOY = join(REPO, 'deploy/kubernetes');
let server: KubeApiServer;
let kubeconfig: string;
let scratch: string;

interface Doc {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template: { spec: { initContainers: { command: string[] }[]; containers: { lifecycle: { preStop: { exec: { command: string[] } } } }[] } } };
}
const manifests = (): Doc[] =>
  ['configmap.yaml', 'daemonset.yaml', 'rbac.yaml', 'serviceaccount.yaml'].flatMap((f) => readFileSync(join(DEPLOY, f), 'utf8').split(/^---$/m).map((text) => parse(text) as Doc));

beforeAll(async () => {
  server = new KubeApiServer({ token: 'deploy-test' });
  await server.start();
  kubeconfig = server.writeKubeconfig();
  scratch = mkdtempSync(join(tmpdir(), 'cilia-deploy-'));
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('deploy/kubernetes', () => {
  it('kubectl accepts every manifest (apply --dry-run=client -k, then a real apply) and the objects are served as applied', async () => {
    const dry = await kubectl(kubeconfig, ['apply', '--dry-run=client', '-k', DEPLOY]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const expected = [
      'customresourcedefinition.apiextensions.k8s.io/ciliumnetworkpolicies.cilium.io',
      'customresourcedefinition.apiextensions.k8s.io/ciliumclusterwidenetworkpolicies.cilium.io',
      'customresourcedefinition.apiextensions.k8s.io/ciliumidentities.cilium.io',
      'customresourcedefinition.apiextensions.k8s.io/ciliumnodes.cilium.io',
      'serviceaccount/cilia',
      'clusterrole.rbac.authorization.k8s.io/cilia',
      'clusterrolebinding.rbac.authorization.k8s.io/cilia',
      'configmap/cilia-config',
      'daemonset.apps/cilia',
    ];
    for (const name of expected) expect(dry.stdout).toContain(`${name} created (dry run)`);
    // A dry run creates nothing.
    expect(server.objects('apps/v1', 'DaemonSet')).toEqual([]);

    const real = await kubectl(kubeconfig, ['apply', '-k', DEPLOY]);
    expect(real.code, real.stderr).toBe(0);
    for (const name of expected) expect(real.stdout).toContain(`${name} created`);
    const ds = server.objects('apps/v1', 'DaemonSet', 'kube-system')[0] as unknown as { spec: { template: { spec: { hostNetwork: boolean; serviceAccountName: string } } } };
    expect(ds.spec.template.spec).toMatchObject({ hostNetwork: true, serviceAccountName: 'cilia' });
    // With the CRDs in, a CiliumNetworkPolicy is validated against them (a bad one refused, naming the field).
    const bad = await kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'bad', namespace: 'default' }, spec: { endpointSelector: 'web' } }));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.endpointSelector');
  }, 60_000);

  it("the ConfigMap's agent config is accepted by the agent (Kubernetes mode, identity.mode: crd)", () => {
    const config = manifests().find((d) => d.kind === 'ConfigMap')!.data!['config.yaml']!;
    const file = join(scratch, 'config.yaml');
    writeFileSync(file, config);
    const r = spawnSync(process.execPath, [AGENT_MAIN, '--print-config-reference', '--config', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('plugin @cilia/plugin-kubernetes');
    expect(r.stdout).toContain('| `identity.mode` |');
    // The CNI network config it ships is JSON a runtime can read.
    expect(JSON.parse(manifests().find((d) => d.kind === 'ConfigMap')!.data!['10-cilia.conflist']!)).toMatchObject({ plugins: [{ type: 'cilia-cni', socket: '/var/run/cilia/cilia.sock' }] });
  });

  it("the DaemonSet's init container writes cilia-cni and its network config to the host, and preStop removes them", () => {
    const ds = manifests().find((d) => d.kind === 'DaemonSet')!.spec!.template.spec;
    const conflist = manifests().find((d) => d.kind === 'ConfigMap')!.data!['10-cilia.conflist']!;
    const host = join(scratch, 'host');
    const etc = join(scratch, 'etc-cilia');
    execFileSync('mkdir', ['-p', host, etc]);
    writeFileSync(join(etc, '10-cilia.conflist'), conflist);
    // The container's paths mapped into the scratch root: the host at <scratch>/host, the image's /opt/cilia at the repository.
    const localize = (script: string) =>
      script
        .replaceAll('/host/', `${host}/`)
        .replaceAll('#!/opt/cni/bin/', `#!${host}/opt/cni/bin/`)
        .replaceAll('require("/opt/cni/bin/', `require("${host}/opt/cni/bin/`)
        .replaceAll('/opt/cilia/', `${REPO}/`)
        .replaceAll('/etc/cilia/', `${etc}/`);
    const install = ds.initContainers[0]!.command;
    expect(install.slice(0, 2)).toEqual(['/bin/sh', '-ec']);
    execFileSync('/bin/sh', ['-ec', localize(install[2]!)], { encoding: 'utf8' });
    const plugin = join(host, 'opt/cni/bin/cilia-cni');
    expect(readFileSync(join(host, 'etc/cni/net.d/10-cilia.conflist'), 'utf8')).toBe(conflist);
    // As a runtime calls it: the CNI VERSION command, config on stdin.
    const version = spawnSync(plugin, [], { input: '{"cniVersion":"1.1.0"}', env: { CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
    expect(version.status, version.stderr).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ cniVersion: '1.1.0', supportedVersions: expect.arrayContaining(['0.4.0', '1.0.0', '1.1.0']) });

    const preStop = ds.containers[0]!.lifecycle.preStop.exec.command;
    execFileSync(preStop[0]!, [preStop[1]!, localize(preStop[2]!)]);
    expect([plugin, join(host, 'opt/cni/bin/cilia-cni.d'), join(host, 'etc/cni/net.d/10-cilia.conflist')].filter((p) => existsSync(p))).toEqual([]);
  });
});
