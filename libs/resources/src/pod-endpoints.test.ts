import type { Endpoint, EndpointCreateRequest, EndpointManager, KubeObject, Labels, Logger, ResourceEvent, ResourceKind, ResourceSource } from '@cilia/core';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OwnedPodsFile, OwnedPodsMemory } from './owned-pods.js';
import { PodEndpointController, podEndpointLabels, podNamedPorts } from './pod-endpoints.js';

const quiet: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quiet };

/** A source the test drives by hand. */
class HandSource implements ResourceSource {
  readonly name = 'hand';
  constructor(readonly podAttachment: 'agent' | 'cni' = 'agent') {}
  listener?: (event: ResourceEvent) => void;
  subscribe(_kinds: readonly ResourceKind[], listener: (event: ResourceEvent) => void) {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  pod(name: string, labels: Record<string, string>, namespace = 'default', spec: Record<string, unknown> = {}): void {
    const object: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec };
    this.listener!({ type: 'upsert', ref: { kind: 'Pod', namespace, name }, object });
  }
  namespace(name: string, labels: Record<string, string>): void {
    const object: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
    this.listener!({ type: 'upsert', ref: { kind: 'Namespace', name }, object });
  }
  namespaceGone(name: string): void {
    this.listener!({ type: 'delete', ref: { kind: 'Namespace', name } });
  }
  gone(name: string, namespace = 'default'): void {
    this.listener!({ type: 'delete', ref: { kind: 'Pod', namespace, name } });
  }
  synced(): void {
    this.listener!({ type: 'synced' });
  }
}

/** An in-memory EndpointManager that records calls and can be told to fail or to be slow. */
class FakeEndpoints implements EndpointManager {
  readonly endpoints = new Map<number, Endpoint>();
  readonly calls: string[] = [];
  failures = 0;
  delayMs = 0;
  #next = 1;
  #inFlight = 0;
  maxInFlightPerPod = 0;
  readonly #podsInFlight = new Map<string, number>();

  add(request: EndpointCreateRequest): Endpoint {
    const e: Endpoint = {
      id: this.#next++,
      name: request.name,
      namespace: request.namespace,
      labels: request.labels,
      netns: `/run/netns/${request.name}`,
      hostInterface: `lxc${this.#next}`,
      hostMac: '02:00:00:00:00:01',
      interfaceName: 'eth0',
      mac: '02:00:00:00:00:02',
      identity: 0 as Endpoint['identity'],
      state: 'ready',
      policyRevision: 0 as Endpoint['policyRevision'],
      ...(request.containerId ? { containerId: request.containerId } : {}),
      ...(request.namedPorts ? { namedPorts: request.namedPorts } : {}),
    };
    this.endpoints.set(e.id, e);
    return e;
  }
  async #op<T>(what: string, pod: string, body: () => T): Promise<T> {
    this.calls.push(what);
    const n = (this.#podsInFlight.get(pod) ?? 0) + 1;
    this.#podsInFlight.set(pod, n);
    this.maxInFlightPerPod = Math.max(this.maxInFlightPerPod, n);
    this.#inFlight++;
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failures > 0) {
        this.failures--;
        throw new Error('injected failure');
      }
      return body();
    } finally {
      this.#inFlight--;
      this.#podsInFlight.set(pod, this.#podsInFlight.get(pod)! - 1);
    }
  }
  create(request: EndpointCreateRequest): Promise<Endpoint> {
    return this.#op(`create ${request.namespace}/${request.name}`, `${request.namespace}/${request.name}`, () => this.add(request));
  }
  updateLabels(id: number, labels: Labels): Promise<Endpoint> {
    const e = this.endpoints.get(id)!;
    return this.#op(`update ${e.namespace}/${e.name}`, `${e.namespace}/${e.name}`, () => {
      const updated = { ...e, labels };
      this.endpoints.set(id, updated);
      return updated;
    });
  }
  delete(id: number): Promise<boolean> {
    const e = this.endpoints.get(id)!;
    return this.#op(`delete ${e.namespace}/${e.name}`, `${e.namespace}/${e.name}`, () => this.endpoints.delete(id));
  }
  get(id: number) {
    return this.endpoints.get(id);
  }
  findByContainer() {
    return undefined;
  }
  list() {
    return [...this.endpoints.values()];
  }
  readonly #listeners = new Set<(event: { type: 'upsert' | 'delete'; endpoint: Endpoint }) => void>();
  subscribe(listener: (event: { type: 'upsert' | 'delete'; endpoint: Endpoint }) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** An endpoint cilia-cni made (container id, the CNI config's labels), announced as the manager does. */
  attach(request: EndpointCreateRequest): Endpoint {
    const e = this.add(request);
    for (const l of this.#listeners) l({ type: 'upsert', endpoint: e });
    return e;
  }
  labelsOf(namespace: string, name: string): Labels | undefined {
    return this.list().find((e) => e.namespace === namespace && e.name === name && !e.containerId)?.labels;
  }
}

/** The labels every pod in `ns` carries besides its own. */
const nsLabels = (ns: string, extra: Record<string, string> = {}) => ({
  'k8s:io.kubernetes.pod.namespace': ns,
  'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': ns,
  ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`k8s:io.cilium.k8s.namespace.labels.${k}`, v])),
});

describe('podEndpointLabels', () => {
  it('prefixes Pod labels with k8s: and adds the namespace, its name label and its labels, as Cilium does', () => {
    const pod: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', labels: { app: 'web', 'app.kubernetes.io/part-of': 'shop' } } };
    expect(podEndpointLabels(pod)).toEqual({ 'k8s:app': 'web', 'k8s:app.kubernetes.io/part-of': 'shop', ...nsLabels('shop') });
    expect(podEndpointLabels(pod, { team: 'blue', 'kubernetes.io/metadata.name': 'shop' })).toEqual({ 'k8s:app': 'web', 'k8s:app.kubernetes.io/part-of': 'shop', ...nsLabels('shop', { team: 'blue' }) });
  });
});

describe('podNamedPorts', () => {
  it("collects every container's named ports; unnamed ones are not", () => {
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'x' },
      spec: {
        containers: [
          { name: 'a', ports: [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }, { containerPort: 9090, protocol: 'TCP' }] },
          { name: 'b', ports: [{ name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' }] },
          { name: 'c' },
        ],
      },
    };
    expect(podNamedPorts(pod)).toEqual({ 'serve-80-tcp': { port: 80, protocol: 'TCP' }, 'serve-81-udp': { port: 81, protocol: 'UDP' } });
    expect(podNamedPorts({ ...pod, spec: { containers: [{ name: 'a' }] } })).toBeUndefined();
  });
});

describe('PodEndpointController (logic, against an in-memory EndpointManager)', () => {
  let controller: PodEndpointController | undefined;
  afterEach(async () => {
    await controller?.stop();
    controller = undefined;
  });

  function setup(endpoints = new FakeEndpoints(), owned = new OwnedPodsMemory(), attachment: 'agent' | 'cni' = 'agent') {
    const source = new HandSource(attachment);
    controller = new PodEndpointController({ source, endpoints, owned, logger: quiet, retryInitialMs: 10, retryMaxMs: 40 });
    const started = controller.start();
    return { source, endpoints, started, controller, owned };
  }

  /** start() loads the record before it subscribes. */
  async function subscribed(source: HandSource): Promise<void> {
    while (!source.listener) await new Promise((r) => setTimeout(r, 1));
  }

  it('creates an endpoint for a Pod, relabels it, and deletes it with the Pod', async () => {
    const { source, endpoints, started, controller, owned } = setup();
    await subscribed(source);
    source.pod('web', { app: 'web' });
    source.synced();
    await started;
    await controller.idle();
    expect(owned.pods).toEqual(new Set(['default/web']));
    expect(endpoints.labelsOf('default', 'web')).toEqual({ 'k8s:app': 'web', ...nsLabels('default') });
    source.pod('web', { app: 'web', tier: 'front' });
    await controller.idle();
    expect(endpoints.labelsOf('default', 'web')).toMatchObject({ 'k8s:tier': 'front' });
    source.pod('web', { app: 'web', tier: 'front' }); // unchanged labels: no call
    await controller.idle();
    source.gone('web');
    await controller.idle();
    expect(endpoints.list()).toEqual([]);
    expect(owned.pods).toEqual(new Set());
    expect(endpoints.calls).toEqual(['create default/web', 'update default/web', 'delete default/web']);
  });

  it('with Pods the runtime attaches (cni): creates nothing, gives the CNI endpoint its Pod\'s k8s: labels whichever comes first, keeps its own', async () => {
    const { source, endpoints, started, controller } = setup(new FakeEndpoints(), new OwnedPodsMemory(), 'cni');
    await subscribed(source);
    // Attached before the Pod is known: nothing happens to it yet.
    const early = endpoints.attach({ name: 'early', namespace: 'shop', labels: { 'cni:net': 'a' }, containerId: 'c1' });
    source.pod('early', { app: 'early' }, 'shop');
    source.pod('late', { app: 'late' }, 'shop');
    source.pod('unrelated', { app: 'x' }, 'shop');
    source.synced();
    await started;
    await controller.idle();
    expect(endpoints.get(early.id)!.labels).toEqual({ 'cni:net': 'a', 'k8s:app': 'early', ...nsLabels('shop') });
    // Attached after: labelled as it appears.
    const late = endpoints.attach({ name: 'late', namespace: 'shop', labels: {}, containerId: 'c2' });
    await controller.idle();
    expect(endpoints.get(late.id)!.labels).toEqual({ 'k8s:app': 'late', ...nsLabels('shop') });
    // The Pod's and its Namespace's labels change: so do the endpoint's.
    source.pod('late', { app: 'late', tier: 'db' }, 'shop');
    source.namespace('shop', { team: 'blue' });
    await controller.idle();
    expect(endpoints.get(late.id)!.labels).toEqual({ 'k8s:app': 'late', 'k8s:tier': 'db', ...nsLabels('shop', { team: 'blue' }) });
    // A Pod deleted: its endpoint is the runtime's to delete (CNI DEL).
    source.gone('late', 'shop');
    await controller.idle();
    expect(endpoints.list().map((e) => e.name)).toEqual(['early', 'late']);
    expect(endpoints.calls.filter((c) => !c.startsWith('update'))).toEqual([]);
  });

  it("creates endpoints with the Pod's named ports and its Namespace's labels, and relabels them when the Namespace's labels change", async () => {
    const { source, endpoints, started, controller } = setup();
    await subscribed(source);
    source.namespace('x', { team: 'blue' });
    source.pod('a', { pod: 'a' }, 'x', { containers: [{ name: 'c', ports: [{ name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' }] }] });
    source.pod('b', { pod: 'b' }, 'x');
    source.pod('c', { pod: 'c' }, 'y');
    source.synced();
    await started;
    await controller.idle();
    expect(endpoints.labelsOf('x', 'a')).toEqual({ 'k8s:pod': 'a', ...nsLabels('x', { team: 'blue' }) });
    expect(endpoints.list().find((e) => e.name === 'a')?.namedPorts).toEqual({ 'serve-80-tcp': { port: 80, protocol: 'TCP' } });
    expect(endpoints.labelsOf('y', 'c')).toEqual({ 'k8s:pod': 'c', ...nsLabels('y') });
    source.namespace('x', { team: 'blue' }); // unchanged: no call
    source.namespace('x', { team: 'red', env: 'prod' });
    await controller.idle();
    expect(endpoints.labelsOf('x', 'a')).toEqual({ 'k8s:pod': 'a', ...nsLabels('x', { team: 'red', env: 'prod' }) });
    expect(endpoints.labelsOf('x', 'b')).toEqual({ 'k8s:pod': 'b', ...nsLabels('x', { team: 'red', env: 'prod' }) });
    source.namespaceGone('x');
    await controller.idle();
    expect(endpoints.labelsOf('x', 'b')).toEqual({ 'k8s:pod': 'b', ...nsLabels('x') });
    expect(endpoints.calls.sort()).toEqual(['create x/a', 'create x/b', 'create y/c', 'update x/a', 'update x/a', 'update x/b', 'update x/b']);
  });

  it('gives a host-network Pod no endpoint (and removes it when a Pod switches to the host network)', async () => {
    const { source, endpoints, started, controller } = setup();
    await subscribed(source);
    source.pod('agent', { app: 'agent' }, 'default', { hostNetwork: true });
    source.pod('web', { app: 'web' });
    source.synced();
    await started;
    await controller.idle();
    expect(endpoints.list().map((e) => e.name)).toEqual(['web']);
    source.pod('web', { app: 'web' }, 'default', { hostNetwork: true });
    await controller.idle();
    expect(endpoints.list()).toEqual([]);
  });

  it('adopts the endpoints of Pods that still exist after a restart, and deletes its orphans only after synced', async () => {
    const endpoints = new FakeEndpoints();
    endpoints.add({ name: 'web', namespace: 'default', labels: { 'k8s:app': 'web', ...nsLabels('default') } });
    endpoints.add({ name: 'old', namespace: 'default', labels: {} });
    endpoints.add({ name: 'by-cli', namespace: 'default', labels: {} });
    endpoints.add({ name: 'cni', namespace: 'default', labels: {}, containerId: 'c0ffee' });
    const owned = new OwnedPodsMemory();
    owned.pods = new Set(['default/web', 'default/old', 'default/never-created']);
    const { source, started, controller } = setup(endpoints, owned);
    await subscribed(source);
    source.pod('web', { app: 'web' });
    await controller.idle();
    expect(endpoints.list().map((e) => e.name).sort()).toEqual(['by-cli', 'cni', 'old', 'web']); // nothing deleted before synced
    source.synced();
    await started;
    await controller.idle();
    // Only what it recorded: the CLI's and CNI's endpoints are not its own.
    expect(endpoints.list().map((e) => e.name).sort()).toEqual(['by-cli', 'cni', 'web']);
    expect(endpoints.calls).toEqual(['delete default/old']);
    expect(owned.pods).toEqual(new Set(['default/web']));
  });

  it('keeps its record in a file, replaced whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-owned-'));
    try {
      const file = new OwnedPodsFile(join(dir, 'resources', 'pod-endpoints.json'));
      expect(await file.load()).toEqual(new Set());
      await file.save(new Set(['shop/web', 'default/db']));
      expect(JSON.parse(readFileSync(file.path, 'utf8'))).toEqual({ pods: ['default/db', 'shop/web'] });
      expect(await new OwnedPodsFile(file.path).load()).toEqual(new Set(['default/db', 'shop/web']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serializes the operations of one pod and applies only the latest wanted state', async () => {
    const { source, endpoints, started, controller } = setup();
    await subscribed(source);
    endpoints.delayMs = 30;
    source.synced();
    await started;
    source.pod('web', { v: '1' });
    source.pod('web', { v: '2' });
    source.pod('web', { v: '3' });
    source.pod('db', { v: '1' });
    await controller.idle();
    expect(endpoints.maxInFlightPerPod).toBe(1);
    expect(endpoints.labelsOf('default', 'web')).toMatchObject({ 'k8s:v': '3' });
    expect(endpoints.calls.filter((c) => c.endsWith('/web'))).toEqual(['create default/web', 'update default/web']);
    expect(endpoints.calls).toContain('create default/db');
    // Create then delete while the create is under way: the endpoint ends up gone.
    source.pod('tmp', { v: '1' });
    source.gone('tmp');
    await controller.idle();
    expect(endpoints.labelsOf('default', 'tmp')).toBeUndefined();
  });

  it('retries a failed operation with backoff until it succeeds', async () => {
    const { source, endpoints, started, controller } = setup();
    await subscribed(source);
    endpoints.failures = 3;
    source.pod('web', { app: 'web' });
    source.synced();
    await started;
    await controller.idle();
    expect(endpoints.calls).toEqual(['create default/web', 'create default/web', 'create default/web', 'create default/web']);
    expect(endpoints.labelsOf('default', 'web')).toBeDefined();
  });

  it('stops retrying when stopped', async () => {
    const { source, endpoints, started, controller } = setup();
    await subscribed(source);
    endpoints.failures = 1000;
    source.pod('web', { app: 'web' });
    source.synced();
    await started;
    await new Promise((r) => setTimeout(r, 100));
    await controller.stop();
    const calls = endpoints.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(endpoints.calls.length).toBe(calls);
  });
});
