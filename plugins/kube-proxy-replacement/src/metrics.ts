import type { ServiceListResponse } from '@cilia/api-client';
import type { MetricFamily, MetricsCollector } from '@cilia/core';

/**
 * The load balancer's gauges on the agent's `/metrics`: frontends by type, and their backends by
 * state and whether new connections choose them. Its drops are the datapath's
 * `cilia_drop_count_total{reason="no service backend"}`.
 */
export function lbMetricsCollector(name: string, report: () => ServiceListResponse): MetricsCollector {
  return {
    name,
    collect(): MetricFamily[] {
      const { services, problems } = report();
      const byType = new Map<string, number>();
      const backends = new Map<string, number>();
      for (const s of services) {
        byType.set(s.frontend.type, (byType.get(s.frontend.type) ?? 0) + 1);
        for (const b of s.backends) {
          const key = `${b.state}\u0000${b.selectable}`;
          backends.set(key, (backends.get(key) ?? 0) + 1);
        }
      }
      return [
        { name: 'cilia_services', help: 'Load-balancer frontends programmed, by type', type: 'gauge', samples: [...byType].sort().map(([type, value]) => ({ labels: { type }, value })) },
        {
          name: 'cilia_service_backends',
          help: 'Backends of the programmed frontends (one per frontend naming it), by state and whether new connections choose them',
          type: 'gauge',
          samples: [...backends].sort().map(([key, value]) => {
            const [state, selectable] = key.split('\u0000') as [string, string];
            return { labels: { state, selectable }, value };
          }),
        },
        { name: 'cilia_service_problems', help: 'Services and EndpointSlices refused, and frontends claimed twice', type: 'gauge', samples: [{ value: problems.length }] },
      ];
    },
  };
}
