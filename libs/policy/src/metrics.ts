import type { MetricFamily, MetricsCollector, PolicyRevision } from '@cilia/core';

/** What the policy metrics read: the engine's counters. */
export interface PolicyMetricsSource {
  revision(): PolicyRevision;
  readonly ruleCount: number;
  readonly importErrors: number;
  readonly imports: number;
}

/**
 * The repository's state as Cilium exposes it: rules loaded, the highest revision, failed
 * imports, and imports by outcome. How long a revision takes to reach the datapath is the datapath's to measure
 * (`cilia_policy_implementation_delay_seconds`): only it knows when a map write is done.
 */
export function policyMetricsCollector(name: string, source: PolicyMetricsSource): MetricsCollector {
  return {
    name,
    collect: (): MetricFamily[] => [
      { name: 'cilia_policy', help: 'Number of policy rules currently loaded', type: 'gauge', samples: [{ value: source.ruleCount }] },
      { name: 'cilia_policy_max_revision', help: 'Highest policy revision of the repository', type: 'gauge', samples: [{ value: source.revision() }] },
      {
        name: 'cilia_policy_import_errors_total',
        help: 'Policy imports refused (invalid) or failed; nothing of such an import is stored',
        type: 'counter',
        samples: [{ value: source.importErrors }],
      },
      {
        name: 'cilia_policy_change_total',
        help: 'Policy imports by outcome (Cilium: cilium_policy_change_total)',
        type: 'counter',
        samples: [
          { labels: { outcome: 'success' }, value: source.imports },
          { labels: { outcome: 'failure' }, value: source.importErrors },
        ],
      },
    ],
  };
}
