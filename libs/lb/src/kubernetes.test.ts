import type { KubeObject } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { kubeServiceFrontends, parseEndpointSlice, parseKubeService, type KubeEndpointSlice, type KubeService } from './kubernetes.js';
import { frontendKey, parseService, selectableBackends, servesLocalOnly } from './model.js';

const options = { nodePortRange: [30000, 32767] as const, serviceProxyName: '', defaultAlgorithm: 'random' as const };

const svc = (spec: Record<string, unknown>, extra: Partial<KubeObject> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop', ...(extra.metadata ?? {}) },
  spec,
  ...(extra.status ? { status: extra.status } : {}),
});

const slice = (name: string, body: Record<string, unknown>, labels: Record<string, string> = { 'kubernetes.io/service-name': 'web' }): KubeObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels },
  addressType: 'IPv4',
  ...body,
});

function service(object: KubeObject): KubeService {
  const r = parseKubeService(object, options);
  if (!('service' in r)) throw new Error(`not a service: ${JSON.stringify(r)}`);
  return r.service;
}

function endpoints(object: KubeObject): KubeEndpointSlice {
  const r = parseEndpointSlice(object);
  if (!('slice' in r)) throw new Error(`not a slice: ${JSON.stringify(r)}`);
  return r.slice;
}

describe('Kubernetes Services and EndpointSlices', () => {
  it('maps each Service port to the slice port of the same name, with backend states from the conditions', () => {
    const s = service(
      svc({
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'http', port: 80, targetPort: 'web' },
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
        ],
      }),
    );
    const e = endpoints(
      slice('web-a', {
        ports: [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'dns', port: 5353, protocol: 'UDP' },
        ],
        endpoints: [
          { addresses: ['10.200.1.5'], conditions: { ready: true }, nodeName: 'node-1' },
          { addresses: ['10.200.2.5', '10.200.2.99'], nodeName: 'node-2', zone: 'b' }, // conditions unknown: ready
          { addresses: ['10.200.3.5'], conditions: { ready: false, serving: true, terminating: true } },
          { addresses: ['10.200.3.6'], conditions: { ready: false, serving: false, terminating: true } },
          { addresses: ['10.200.3.7'], conditions: { ready: false } }, // not ready: no backend
        ],
      }),
    );
    const fes = kubeServiceFrontends(s, [e], { nodeAddresses: ['172.30.0.1'] });
    expect(fes.map((f) => `${frontendKey(f.frontend)} ${f.frontend.type}`)).toEqual(['10.96.0.10:80/TCP ClusterIP', '10.96.0.10:53/UDP ClusterIP']);
    expect(fes[0]!.backends).toEqual([
      { address: '10.200.1.5', port: 8080, weight: 1, state: 'active', nodeName: 'node-1' },
      { address: '10.200.2.5', port: 8080, weight: 1, state: 'active', nodeName: 'node-2', zone: 'b' },
      { address: '10.200.3.5', port: 8080, weight: 1, state: 'terminating' },
      { address: '10.200.3.6', port: 8080, weight: 1, state: 'maintenance' },
    ]);
    expect(fes[1]!.backends.map((b) => `${b.address}:${b.port}`)).toEqual(['10.200.1.5:5353', '10.200.2.5:5353', '10.200.3.5:5353', '10.200.3.6:5353']);
    expect(fes[0]).toMatchObject({ namespace: 'shop', name: 'web', sessionAffinitySeconds: 0, algorithm: 'random', externalTrafficPolicy: 'Cluster' });
  });

  it('new connections go to ready backends, to serving terminating ones only when none is ready', () => {
    const b = (state: 'active' | 'terminating' | 'maintenance', weight = 1) => ({ address: '10.0.0.1', port: 1, state, weight });
    expect(selectableBackends([b('active'), b('terminating'), b('maintenance')]).map((x) => x.state)).toEqual(['active']);
    expect(selectableBackends([b('terminating'), b('maintenance')]).map((x) => x.state)).toEqual(['terminating']);
    expect(selectableBackends([b('active', 0), b('terminating')]).map((x) => x.state)).toEqual(['terminating']);
    expect(selectableBackends([b('maintenance')])).toEqual([]);
  });

  it('makes NodePort, LoadBalancer ingress and external IP frontends, each with the traffic policy that applies to it', () => {
    const s = service(
      svc(
        {
          type: 'LoadBalancer',
          clusterIP: '10.96.0.11',
          externalIPs: ['192.0.2.10', 'fd00::1'],
          ports: [{ port: 80, nodePort: 30080 }],
          externalTrafficPolicy: 'Local',
          sessionAffinity: 'ClientIP',
        },
        { status: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }, { hostname: 'lb.example' }] } } },
      ),
    );
    expect(s.notes).toEqual(['external IP fd00::1: IPv6 is not load-balanced yet']);
    const fes = kubeServiceFrontends(s, [], { nodeAddresses: ['172.30.0.1', '10.0.0.1'] });
    expect(fes.map((f) => `${frontendKey(f.frontend)} ${f.frontend.type} ${servesLocalOnly(f) ? 'local' : 'cluster'}`)).toEqual([
      '10.96.0.11:80/TCP ClusterIP cluster',
      '192.0.2.10:80/TCP ExternalIP local',
      '198.51.100.7:80/TCP LoadBalancer local',
      '172.30.0.1:30080/TCP NodePort local',
      '10.0.0.1:30080/TCP NodePort local',
    ]);
    expect(fes.every((f) => f.sessionAffinitySeconds === 10800 && f.backends.length === 0)).toBe(true);
  });

  it('skips ExternalName and headless Services, and those labelled for another proxy', () => {
    expect(parseKubeService(svc({ type: 'ExternalName', externalName: 'db.example' }), options)).toEqual({ skipped: expect.stringMatching(/ExternalName/) });
    expect(parseKubeService(svc({ clusterIP: 'None', ports: [{ port: 80 }] }), options)).toEqual({ skipped: expect.stringMatching(/headless/) });
    const labelled = svc({ clusterIP: '10.96.0.1', ports: [{ port: 80 }] }, { metadata: { name: 'web', labels: { 'service.kubernetes.io/service-proxy-name': 'other' } } });
    expect(parseKubeService(labelled, options)).toEqual({ skipped: expect.stringMatching(/service-proxy-name=other/) });
    expect(parseKubeService(labelled, { ...options, serviceProxyName: 'other' })).toHaveProperty('service');
  });

  it('refuses a malformed Service naming the field', () => {
    const problems = (spec: Record<string, unknown>, extra?: Partial<KubeObject>) => {
      const r = parseKubeService(svc(spec, extra), options);
      return 'problems' in r ? r.problems : r;
    };
    expect(problems({ type: 'NodePort', clusterIP: '10.96.0.1', ports: [{ port: 80, nodePort: 80 }] })).toEqual([{ path: 'spec.ports[0].nodePort', reason: '80 is outside the node port range 30000-32767' }]);
    expect(problems({ type: 'NodePort', ports: [{ port: 80 }] })).toEqual([{ path: 'spec.ports[0].nodePort', reason: expect.stringMatching(/^required for type NodePort/) }]);
    expect(problems({ ports: [{ port: 80 }] })).toEqual([{ path: 'spec.clusterIP', reason: expect.stringMatching(/^required for type ClusterIP/) }]);
    expect(problems({ clusterIP: '10.96.0.1', ports: [{ port: 80 }, { port: 81 }] })).toEqual([
      { path: 'spec.ports[0].name', reason: 'required when a Service has more than one port' },
      { path: 'spec.ports[1].name', reason: 'required when a Service has more than one port' },
    ]);
    expect(problems({ clusterIP: '10.96.0.1', ports: [{ port: 70000 }] })).toEqual([{ path: 'spec.ports[0].port', reason: expect.stringMatching(/65535/) }]);
    expect(problems({ clusterIP: '10.96.0.1.5', ports: [{ port: 80 }] })).toEqual([{ path: 'spec.clusterIP', reason: '"10.96.0.1.5" is not an IP address' }]);
    expect(problems({ clusterIP: '10.96.0.1', ports: [{ port: 80 }], sessionAffinity: 'Sticky' })).toEqual([{ path: 'spec.sessionAffinity', reason: expect.any(String) }]);
    expect(problems({ clusterIP: '10.96.0.1', ports: [{ port: 80 }] }, { metadata: { name: 'web', annotations: { 'service.cilium.io/lb-algorithm': 'round-robin' } } })).toEqual([
      { path: 'metadata.annotations.service.cilium.io/lb-algorithm', reason: 'must be one of random, maglev, got "round-robin"' },
    ]);
  });

  it('takes the selection algorithm from the annotation, else the default', () => {
    const annotated = svc({ clusterIP: '10.96.0.1', ports: [{ port: 80 }] }, { metadata: { name: 'web', annotations: { 'service.cilium.io/lb-algorithm': 'maglev' } } });
    expect(service(annotated).algorithm).toBe('maglev');
    expect(service(svc({ clusterIP: '10.96.0.1', ports: [{ port: 80 }] })).algorithm).toBe('random');
  });

  it('skips slices of no Service and of IPv6, refuses bad addresses by field path', () => {
    expect(parseEndpointSlice(slice('x', { endpoints: [] }, {}))).toEqual({ skipped: expect.stringMatching(/kubernetes.io\/service-name/) });
    expect(parseEndpointSlice({ ...slice('x', { endpoints: [] }), addressType: 'IPv6' })).toEqual({ skipped: expect.stringMatching(/IPv6/) });
    expect(parseEndpointSlice(slice('x', { endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['nope'] }] }))).toEqual({
      problems: [{ path: 'endpoints[1].addresses[0]', reason: '"nope" is not an IPv4 address (addressType IPv4)' }],
    });
    expect(parseEndpointSlice(slice('x', { endpoints: [{ addresses: [] }] }))).toEqual({ problems: [{ path: 'endpoints[0].addresses', reason: expect.any(String) }] });
  });

  it('joins the backends of several slices, a ready copy of an endpoint winning over a terminating one', () => {
    const s = service(svc({ clusterIP: '10.96.0.1', ports: [{ port: 80, targetPort: 'http' }] }));
    const a = endpoints(slice('a', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.0.0.1'], conditions: { terminating: true, serving: true } }] }));
    const b = endpoints(slice('b', { ports: [{ port: 8080 }], endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }] }));
    const [fe] = kubeServiceFrontends(s, [a, b], { nodeAddresses: [] });
    // Slice a names its port after the targetPort (written by hand); b after the Service port ("").
    expect(fe!.backends.map((x) => `${x.address}:${x.port} ${x.state}`)).toEqual(['10.0.0.1:8080 active', '10.0.0.2:8080 active']);
  });

  it('validates a service given through the API, defaults filled in', () => {
    expect(parseService({ frontend: { address: '10.96.0.1', port: 80 }, backends: [{ address: '10.0.0.1', port: 8080 }] })).toEqual({
      service: {
        namespace: '',
        name: '',
        frontend: { address: '10.96.0.1', port: 80, protocol: 'TCP', type: 'ClusterIP' },
        backends: [{ address: '10.0.0.1', port: 8080, weight: 1, state: 'active' }],
        externalTrafficPolicy: 'Cluster',
        internalTrafficPolicy: 'Cluster',
        sessionAffinitySeconds: 0,
        algorithm: 'random',
      },
    });
    expect(parseService({ frontend: { address: '10.96.0.1', port: 80, protocol: 'SCTP' } })).toEqual({ problems: [{ path: 'frontend.protocol', reason: expect.any(String) }] });
    expect(parseService({ frontend: { address: 'fd00::1', port: 80 } })).toEqual({ problems: [{ path: 'frontend.address', reason: expect.stringMatching(/IPv4/) }] });
    expect(parseService({ frontend: { address: '10.96.0.1', port: 80 }, backends: [{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 }] })).toEqual({
      problems: [{ path: 'backends[1]', reason: 'duplicate backend 10.0.0.1:1 (also backends[0])' }],
    });
    expect(parseService({ frontend: { address: '10.96.0.1', port: 80 }, colour: 'red' })).toEqual({ problems: [{ path: 'colour', reason: 'unknown key' }] });
  });
});
