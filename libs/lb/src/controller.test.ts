import type { KubeObject, Logger, ResourceEvent, Service, ServiceFrontend } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { ServiceController, type ServiceSink } from './controller.js';
import { frontendKey, parseService } from './model.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

/** Records what the controller writes, and keeps the resulting set of frontends. */
class Recorder implements ServiceSink {
  readonly calls: string[] = [];
  readonly held = new Map<string, Service>();
  apply(upserts: readonly Service[], deletes: readonly Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>[]): void {
    this.calls.push(`apply +[${upserts.map((s) => frontendKey(s.frontend)).join(' ')}] -[${deletes.map(frontendKey).join(' ')}]`);
    for (const d of deletes) this.held.delete(frontendKey(d));
    for (const s of upserts) this.held.set(frontendKey(s.frontend), s);
  }
  sync(services: readonly Service[]): void {
    this.calls.push(`sync [${services.map((s) => frontendKey(s.frontend)).join(' ')}]`);
    this.held.clear();
    for (const s of services) this.held.set(frontendKey(s.frontend), s);
  }
  backends(key: string): string[] {
    return (this.held.get(key)?.backends ?? []).map((b) => `${b.address}:${b.port} ${b.state}`);
  }
}

const svc = (name: string, spec: Record<string, unknown>): ResourceEvent => ({
  type: 'upsert',
  ref: { kind: 'Service', namespace: 'shop', name },
  object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec } as KubeObject,
});
const slice = (name: string, service: string, addresses: string[], extra: Record<string, unknown> = {}): ResourceEvent => ({
  type: 'upsert',
  ref: { kind: 'EndpointSlice', namespace: 'shop', name },
  object: {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ port: 8080 }],
    endpoints: addresses.map((a) => ({ addresses: [a] })),
    ...extra,
  } as KubeObject,
});
const del = (kind: 'Service' | 'EndpointSlice', name: string): ResourceEvent => ({ type: 'delete', ref: { kind, namespace: 'shop', name } });

function controller() {
  const sink = new Recorder();
  const c = new ServiceController({ sink, logger: silent, options: { nodeAddresses: ['172.30.0.1'], nodePortRange: [30000, 32767], serviceProxyName: '', defaultAlgorithm: 'random' } });
  return { sink, c };
}

describe('ServiceController', () => {
  it('writes nothing until the sources are synced, then everything in one batch, then only what changes', () => {
    const { sink, c } = controller();
    c.handle(svc('web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ port: 80, nodePort: 30080 }] }));
    c.handle(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2']));
    c.handle(svc('db', { clusterIP: '10.96.0.11', ports: [{ port: 5432 }] }));
    expect(sink.calls).toEqual([]);
    c.handle({ type: 'synced' });
    expect(sink.calls).toEqual(['sync [10.96.0.11:5432/TCP 10.96.0.10:80/TCP 172.30.0.1:30080/TCP]']);
    expect(sink.backends('10.96.0.10:80/TCP')).toEqual(['10.0.0.1:8080 active', '10.0.0.2:8080 active']);
    // A backend terminating changes the web frontends only.
    c.handle(slice('web-1', 'web', ['10.0.0.1', '10.0.0.2'], { endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'], conditions: { ready: false, serving: true, terminating: true } }] }));
    expect(sink.calls[1]).toBe('apply +[10.96.0.10:80/TCP 172.30.0.1:30080/TCP] -[]');
    expect(sink.backends('172.30.0.1:30080/TCP')).toEqual(['10.0.0.1:8080 active', '10.0.0.2:8080 terminating']);
    // The same content again writes nothing.
    c.handle(svc('db', { clusterIP: '10.96.0.11', ports: [{ port: 5432 }] }));
    expect(sink.calls[2]).toBe('apply +[] -[]');
    c.handle(del('Service', 'web'));
    expect(sink.calls[3]).toBe('apply +[] -[10.96.0.10:80/TCP 172.30.0.1:30080/TCP]');
    expect([...sink.held.keys()]).toEqual(['10.96.0.11:5432/TCP']);
  });

  it('refuses an invalid update with its field path, keeping the version before it, until it is fixed', () => {
    const { sink, c } = controller();
    c.handle(svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    c.handle(slice('web-1', 'web', ['10.0.0.1']));
    c.handle({ type: 'synced' });
    c.handle(svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80, nodePort: 30080 }] }));
    c.handle(slice('web-1', 'web', ['not-an-ip']));
    expect(c.problems()).toEqual([
      'Service shop/web refused: spec.ports[0].nodePort: only a NodePort or LoadBalancer Service has node ports',
      'EndpointSlice shop/web-1 refused: endpoints[0].addresses[0]: "not-an-ip" is not an IPv4 address (addressType IPv4)',
    ]);
    expect(sink.calls).toEqual(['sync [10.96.0.10:80/TCP]']);
    expect(sink.backends('10.96.0.10:80/TCP')).toEqual(['10.0.0.1:8080 active']);
    c.handle(slice('web-1', 'web', ['10.0.0.3']));
    c.handle(svc('web', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    expect(c.problems()).toEqual([]);
    expect(sink.backends('10.96.0.10:80/TCP')).toEqual(['10.0.0.3:8080 active']);
  });

  it('leaves headless, ExternalName and other proxies\' Services alone', () => {
    const { sink, c } = controller();
    c.handle(svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }));
    c.handle(svc('dns', { type: 'ExternalName', externalName: 'db.example' }));
    c.handle({ type: 'synced' });
    expect(sink.calls).toEqual(['sync []']);
    expect([...c.skipped().keys()].sort()).toEqual(['shop/dns', 'shop/headless']);
  });

  it('gives a frontend two owners claim to the first; the other gets it once it is free', () => {
    const { sink, c } = controller();
    c.handle(svc('a', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }));
    c.handle({ type: 'synced' });
    c.handle(svc('b', { clusterIP: '10.96.0.10', ports: [{ name: 'web', port: 80 }, { name: 'alt', port: 81 }] }));
    c.handle(slice('b-1', 'b', ['10.0.0.9']));
    expect(c.problems()).toEqual(['Service shop/b: frontend 10.96.0.10:80/TCP is served by Service shop/a already']);
    expect(c.ownerOf({ address: '10.96.0.10', port: 80, protocol: 'TCP' })).toBe('Service shop/a');
    c.handle(del('Service', 'a'));
    expect(c.problems()).toEqual([]);
    expect(c.ownerOf({ address: '10.96.0.10', port: 80, protocol: 'TCP' })).toBe('Service shop/b');
    expect(sink.backends('10.96.0.10:80/TCP')).toEqual([]); // b's port "web" has no slice port named web
    expect(sink.backends('10.96.0.10:81/TCP')).toEqual([]);
  });

  it('serves other owners\' frontends (the API\'s) beside the Services', () => {
    const { sink, c } = controller();
    const parsed = parseService({ name: 'x', frontend: { address: '10.96.1.1', port: 53, protocol: 'UDP' }, backends: [{ address: '10.0.0.5', port: 5353 }] });
    if (!('service' in parsed)) throw new Error('not a service');
    const api = parsed.service;
    c.setStatic('api', [api]);
    expect(sink.calls).toEqual([]);
    c.handle({ type: 'synced' });
    expect(sink.calls).toEqual(['sync [10.96.1.1:53/UDP]']);
    c.setStatic('api', []);
    expect(sink.calls[1]).toBe('apply +[] -[10.96.1.1:53/UDP]');
  });
});
