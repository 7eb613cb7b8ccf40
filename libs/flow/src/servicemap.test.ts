import type { Flow, FlowPeer } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { buildServiceMap, renderServiceMapHtml, renderServiceMapSvg } from './servicemap.js';

const pod = (name: string, app: string | undefined, port?: number): FlowPeer => ({
  ip: `10.0.0.${name.length}`,
  identity: 300 + name.length,
  namespace: 'shop',
  podName: name,
  labels: { ...(app ? { 'k8s:app': app } : {}), 'k8s:io.kubernetes.pod.namespace': 'shop' },
  ...(port !== undefined ? { port } : {}),
});
const world: FlowPeer = { ip: '1.1.1.1', identity: 2, labels: { 'reserved:world': '' }, port: 443 };
const flow = (source: FlowPeer, destination: FlowPeer, verdict: Flow['verdict'], isReply = false): Flow => ({
  time: new Date(),
  node: 'node-1',
  verdict,
  eventType: verdict === 'DROPPED' ? 'drop' : 'trace',
  protocol: 'TCP',
  isReply,
  source,
  destination,
});

describe('the service map', () => {
  const flows = [
    flow(pod('web-1', 'frontend'), pod('api-1', 'backend', 8080), 'FORWARDED'),
    flow(pod('web-2', 'frontend'), pod('api-1', 'backend', 8080), 'FORWARDED'),
    // A reply folds into its connection: backend → frontend is frontend → backend.
    flow(pod('api-1', 'backend', 8080), pod('web-1', 'frontend'), 'FORWARDED', true),
    flow(pod('api-1', 'backend'), pod('db-0', 'db', 5432), 'FORWARDED'),
    flow(pod('web-1', 'frontend'), pod('db-0', 'db', 5432), 'DROPPED'),
    flow(pod('job-x', undefined), world, 'FORWARDED'),
  ];

  it('has workloads by namespace and app (a pod without one by its name, reserved identities by theirs) and connections with counts and verdicts', () => {
    const map = buildServiceMap(flows);
    expect(map.nodes.map((n) => [n.id, n.kind, n.pods])).toEqual([
      ['reserved:world', 'reserved', []],
      ['shop/backend', 'workload', ['api-1']],
      ['shop/db', 'workload', ['db-0']],
      ['shop/frontend', 'workload', ['web-1', 'web-2']],
      ['shop/job-x', 'pod', ['job-x']],
    ]);
    expect(map.edges).toEqual([
      { source: 'shop/backend', target: 'shop/db', count: 1, forwarded: 1, dropped: 0, verdict: 'forwarded', ports: ['TCP/5432'], l7: [] },
      { source: 'shop/frontend', target: 'shop/backend', count: 3, forwarded: 3, dropped: 0, verdict: 'forwarded', ports: ['TCP/8080'], l7: [] },
      { source: 'shop/frontend', target: 'shop/db', count: 1, forwarded: 0, dropped: 1, verdict: 'dropped', ports: ['TCP/5432'], l7: [] },
      { source: 'shop/job-x', target: 'reserved:world', count: 1, forwarded: 1, dropped: 0, verdict: 'forwarded', ports: ['TCP/443'], l7: [] },
    ]);
  });

  it('draws them in columns from the sources, edges coloured by verdict, as SVG and HTML', () => {
    const map = buildServiceMap(flows);
    const svg = renderServiceMapSvg(map);
    expect(svg).toMatch(/^<svg [^>]*data-nodes="5" data-edges="4"/);
    expect(svg).toContain('<g class="edge dropped" data-source="shop/frontend" data-target="shop/db" data-count="1" data-forwarded="0" data-dropped="1" data-verdict="dropped">');
    const x = (id: string) => Number(new RegExp(`data-id="${id}"[^>]*transform="translate\\((\\d+),`).exec(svg)?.[1]);
    expect(x('shop/frontend')).toBeLessThan(x('shop/backend'));
    expect(x('shop/backend')).toBeLessThan(x('shop/db'));
    expect(renderServiceMapHtml(map, 'T & <x>')).toContain('<title>T &amp; &lt;x&gt;</title>');
  });
});
