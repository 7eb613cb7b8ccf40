import { Tokens, type MetricFamily, type MetricSample, type MetricsCollector, type Resolver } from '@cilia/core';

/** Counts of `items` by `key`, as samples labelled `label`. */
function countBy<T>(items: readonly T[], label: string, key: (item: T) => string, known: readonly string[]): MetricSample[] {
  const counts = new Map(known.map((k) => [k, 0]));
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].map(([value, n]) => ({ labels: { [label]: value }, value: n }));
}

/**
 * The gauges Cilium users chart, read through the service interfaces — so they hold whichever
 * plugin provides the service: `cilia_identity{type}` (Cilium's `cilium_identity`),
 * `cilia_ip_addresses{family}` (`cilium_ip_addresses`), `cilia_nodes_all_num`
 * (`cilium_nodes_all_num`). A service the agent runs without adds nothing.
 */
export function serviceMetricsCollector(resolver: Resolver): MetricsCollector {
  return {
    name: 'agent',
    collect(): MetricFamily[] {
      const families: MetricFamily[] = [];
      const identities = resolver.getOptional(Tokens.IdentityAllocator);
      if (identities) {
        families.push({ name: 'cilia_identity', help: 'Security identities known to the agent, by type (reserved, cluster, local)', type: 'gauge', samples: countBy(identities.list(), 'type', (i) => i.scope, ['reserved', 'cluster', 'local']) });
      }
      const ipam = resolver.getOptional(Tokens.Ipam);
      if (ipam) {
        families.push({ name: 'cilia_ip_addresses', help: 'Addresses leased by IPAM, by family', type: 'gauge', samples: countBy(ipam.leases(), 'family', (l) => l.family, ['ipv4', 'ipv6']) });
      }
      const nodes = resolver.getOptional(Tokens.NodeRegistry);
      if (nodes) families.push({ name: 'cilia_nodes_all_num', help: 'Nodes in the cluster (this one included)', type: 'gauge', samples: [{ value: nodes.list().length }] });
      return families;
    },
  };
}
