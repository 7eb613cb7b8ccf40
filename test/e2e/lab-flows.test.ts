// Flows across nodes, 2-node lab (native routing): a connection between pods of different nodes
// shows the remote pod's name and labels on both nodes (the shared ipcache carries pod names,
// the identities their labels), and `cilia observe --all-nodes` (the relay, through each node's
// Observer API on :4244) returns the flows of both.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '@cilia/api-client';
import { REPO } from '../support/agent.js';
import { RoutingLab, PORT, type LabPod } from './lab-routing/harness.js';

const CLI = join(REPO, 'node_modules/.bin/cilia');

describe('lab, 2 nodes: flows with remote pods, and the relay', () => {
  const lab = new RoutingLab('native', 2, ['hubble.listenAddress=:4244', 'hubble.relay.enabled=true']);
  let frontend: LabPod;
  let backend: LabPod;
  const observe = (k: number, args: string[]): FlowRecord[] => {
    const r = spawnSync(CLI, ['--socket', lab.socket(k), 'observe', '-o', 'json', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cilia observe on node ${k}: ${r.stderr}`);
    return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
  };

  beforeAll(async () => {
    await lab.up();
    frontend = await lab.addPod('frontend', 1, 'frontend');
    backend = await lab.addPod('backend', 2, 'backend');
  }, 240_000);

  afterAll(async () => {
    await lab.down();
  }, 120_000);

  it('a connection from a pod of node 1 to a pod of node 2 shows the other side\'s pod name and labels on both nodes', async () => {
    await expect.poll(() => lab.probe(frontend, backend, 'TCP'), { timeout: 20_000 }).toBe('ok');
    const ns = lab.k8sNamespace;
    const onNode1 = observe(1, ['--from-pod', `${ns}/frontend`, '--to-port', String(PORT), '--type', 'trace']);
    expect(onNode1.length).toBeGreaterThan(0);
    expect(onNode1[0]).toMatchObject({
      node: lab.node(1),
      source: { podName: 'frontend', namespace: ns, id: frontend.endpoint.id, labels: { 'k8s:app': 'frontend' } },
      destination: { podName: 'backend', namespace: ns, identity: backend.endpoint.identity, labels: { 'k8s:app': 'backend', 'k8s:io.kubernetes.pod.namespace': ns } },
    });
    expect(onNode1[0]!.destination.id).toBeUndefined(); // not an endpoint of node 1
    const onNode2 = observe(2, ['--to-pod', `${ns}/backend`, '--to-port', String(PORT), '--type', 'trace']);
    expect(onNode2.length).toBeGreaterThan(0);
    expect(onNode2[0]).toMatchObject({
      node: lab.node(2),
      source: { podName: 'frontend', namespace: ns, identity: frontend.endpoint.identity, labels: { 'k8s:app': 'frontend', 'k8s:io.kubernetes.pod.namespace': ns } },
      destination: { podName: 'backend', id: backend.endpoint.id },
    });
  }, 60_000);

  it('cilia observe --all-nodes returns the flows of both nodes, merged by time', () => {
    const flows = observe(1, ['--all-nodes', '--namespace', lab.k8sNamespace, '--last', '200']);
    expect(new Set(flows.map((f) => f.node))).toEqual(new Set([lab.node(1), lab.node(2)]));
    const times = flows.map((f) => Date.parse(f.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // Without the relay flag, node 1 answers its own only.
    expect(new Set(observe(1, ['--namespace', lab.k8sNamespace, '--last', '200']).map((f) => f.node))).toEqual(new Set([lab.node(1)]));
  }, 60_000);
});
