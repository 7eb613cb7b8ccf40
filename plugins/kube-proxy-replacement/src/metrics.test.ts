import type { ServiceInfo } from '@cilia/api-client';
import { describe, expect, it } from 'vitest';
import { lbMetricsCollector } from './metrics.js';

const backend = (id: number, state: ServiceInfo['backends'][number]['state'], selectable: boolean) => ({ id, address: `10.0.0.${id}`, port: 8080, weight: 1, state, selectable });
const info = (id: number, type: ServiceInfo['frontend']['type'], backends: ServiceInfo['backends']): ServiceInfo => ({ id, frontend: { address: '10.96.0.1', port: 80 + id, protocol: 'TCP', type }, owner: 'api', backends });

describe('load balancer metrics', () => {
  it('counts frontends by type, backends by state and selection, and problems', () => {
    const collector = lbMetricsCollector('kpr', () => ({
      services: [info(1, 'ClusterIP', [backend(1, 'active', true), backend(2, 'terminating', false)]), info(2, 'NodePort', [backend(1, 'active', true)]), info(3, 'ClusterIP', [])],
      problems: ['Service a/b refused: spec.ports[0].port: must be 1-65535'],
      skipped: {},
    }));
    expect(collector.collect()).toEqual([
      { name: 'cilia_services', help: expect.any(String), type: 'gauge', samples: [{ labels: { type: 'ClusterIP' }, value: 2 }, { labels: { type: 'NodePort' }, value: 1 }] },
      {
        name: 'cilia_service_backends',
        help: expect.any(String),
        type: 'gauge',
        samples: [
          { labels: { state: 'active', selectable: 'true' }, value: 2 },
          { labels: { state: 'terminating', selectable: 'false' }, value: 1 },
        ],
      },
      { name: 'cilia_service_problems', help: expect.any(String), type: 'gauge', samples: [{ value: 1 }] },
    ]);
  });
});
