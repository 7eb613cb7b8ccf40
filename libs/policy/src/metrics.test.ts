import type { MetricFamily, PolicyDelta } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { PolicyEngine } from './engine/engine.js';
import { FakeIdentities } from './engine/fake-identities.js';
import { silentLogger } from './engine/test-rules.js';
import { policyMetricsCollector } from './metrics.js';

const NS = 'k8s:io.kubernetes.pod.namespace';

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'x' }, spec });
const toA = cnp('to-a', { endpointSelector: { matchLabels: { app: 'a' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'b' } }] }] });
const toB = cnp('to-b', { endpointSelector: { matchLabels: { app: 'b' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'a' } }] }] });

function setup() {
  const identities = new FakeIdentities();
  const engine = new PolicyEngine({ identities, enforcement: 'default', allowLocalhost: true, logger: silentLogger() });
  const collector = policyMetricsCollector('@cilia/policy', engine);
  const values = async () => {
    const families = (await collector.collect()) as MetricFamily[];
    return Object.fromEntries(families.map((f) => [f.name, f.type === 'histogram' ? NaN : f.samples.map((s) => s.value)]));
  };
  return { identities, engine, values };
}

describe('policy metrics', () => {
  it('report rules loaded, the highest revision, refused imports and imports by outcome as the engine changes', async () => {
    const { engine, values } = setup();
    expect(await values()).toEqual({ cilia_policy: [0], cilia_policy_max_revision: [0], cilia_policy_import_errors_total: [0], cilia_policy_change_total: [0, 0] });
    const revision = await engine.import([toA, toB]);
    expect(await values()).toEqual({ cilia_policy: [2], cilia_policy_max_revision: [revision], cilia_policy_import_errors_total: [0], cilia_policy_change_total: [1, 0] });
    await expect(engine.import([cnp('broken', { endpointSelector: 'not an object' })])).rejects.toThrow();
    expect(await values()).toMatchObject({ cilia_policy: [2], cilia_policy_max_revision: [revision], cilia_policy_import_errors_total: [1], cilia_policy_change_total: [1, 1] });
    const after = await engine.delete({ name: 'to-a', namespace: 'x' });
    expect(await values()).toEqual({ cilia_policy: [1], cilia_policy_max_revision: [after], cilia_policy_import_errors_total: [1], cilia_policy_change_total: [1, 1] });
  });

  it('stamps the deltas of an import or delete with when it was requested, not those of identity changes', async () => {
    const { identities, engine } = setup();
    const a = identities.add({ 'k8s:app': 'a', [NS]: 'x' });
    const deltas: PolicyDelta[] = [];
    const unwatch = engine.watch({ endpointId: 1, identity: a.id, labels: a.labels }, (d) => deltas.push(d));
    const now = () => performance.timeOrigin + performance.now();
    const before = now();
    await engine.import([toA]);
    identities.add({ 'k8s:app': 'b', [NS]: 'x' });
    await engine.delete({ name: 'to-a' });
    unwatch();
    expect(deltas.map((d) => d.revision)).toEqual([1, 1, 2]);
    const [imported, identity, deleted] = deltas;
    expect(imported!.issuedAt).toBeGreaterThanOrEqual(before);
    expect(imported!.issuedAt).toBeLessThanOrEqual(now());
    expect(identity!.upserts.length).toBeGreaterThan(0);
    expect(identity).not.toHaveProperty('issuedAt');
    expect(deleted!.issuedAt).toBeGreaterThanOrEqual(imported!.issuedAt!);
  });
});
