import type { MetricFamily, MetricLabels } from '@cilia/core';

/** Names collectors may use: `cilia_` (not the agent's own `cilia_agent_`), and Hubble's `hubble_` for flow metrics. */
const FAMILY_NAME = /^(?:cilia|hubble)_[a-zA-Z0-9_]+$/;
const RESERVED_PREFIX = 'cilia_agent_';
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram']);

/**
 * Why Prometheus (or a reader) would not take `family`, as `field path: reason` relative to
 * `path`; undefined when it is fine. Checked on every scrape, since a collector builds its
 * families anew each time.
 */
export function familyProblem(family: MetricFamily, path: string): string | undefined {
  const f = family as Partial<MetricFamily> & Record<string, unknown>;
  if (typeof f.name !== 'string' || !FAMILY_NAME.test(f.name)) return `${path}.name: ${JSON.stringify(f.name)} is not a metric name starting with "cilia_" or "hubble_" ([a-zA-Z0-9_])`;
  if (f.name.startsWith(RESERVED_PREFIX)) return `${path}.name: ${f.name}: the prefix "${RESERVED_PREFIX}" is the agent's own`;
  if (typeof f.help !== 'string' || f.help === '') return `${path}.help: a non-empty string is required`;
  if (typeof f.type !== 'string' || !TYPES.has(f.type)) return `${path}.type: ${JSON.stringify(f.type)} is not counter, gauge or histogram`;
  if (f.type === 'counter' && !f.name.endsWith('_total')) return `${path}.name: ${f.name}: a counter's name ends in "_total"`;
  if (!Array.isArray(f.samples)) return `${path}.samples: an array is required`;
  const seen = new Set<string>();
  for (const [i, sample] of (f.samples as unknown[]).entries()) {
    const at = `${path}.samples[${i}]`;
    const s = (sample ?? {}) as { labels?: unknown };
    const problem = labelsProblem(s.labels, `${at}.labels`, f.type === 'histogram') ?? (f.type === 'histogram' ? histogramProblem(sample, at) : valueProblem(sample, at, f.type === 'counter'));
    if (problem) return problem;
    const key = labelKey((s.labels ?? {}) as MetricLabels);
    if (seen.has(key)) return `${at}.labels: ${key || 'no labels'}: another sample of ${f.name} has the same labels`;
    seen.add(key);
  }
  return undefined;
}

function labelsProblem(labels: unknown, path: string, histogram: boolean): string | undefined {
  if (labels === undefined) return undefined;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return `${path}: an object of label names to strings is required`;
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) return `${path}.${name}: not a label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading "__")`;
    if (histogram && name === 'le') return `${path}.le: reserved for histogram buckets`;
    if (typeof value !== 'string') return `${path}.${name}: ${JSON.stringify(value)} is not a string`;
  }
  return undefined;
}

function valueProblem(sample: unknown, path: string, counter: boolean): string | undefined {
  const { value } = (sample ?? {}) as { value?: unknown };
  if (typeof value !== 'number' || Number.isNaN(value)) return `${path}.value: ${JSON.stringify(value)} is not a number`;
  if (counter && !(value >= 0 && Number.isFinite(value))) return `${path}.value: ${value}: a counter is finite and not negative`;
  return undefined;
}

function histogramProblem(sample: unknown, path: string): string | undefined {
  const { buckets, sum, count } = (sample ?? {}) as { buckets?: unknown; sum?: unknown; count?: unknown };
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) return `${path}.count: ${JSON.stringify(count)} is not a count (an integer ≥ 0)`;
  if (typeof sum !== 'number' || Number.isNaN(sum)) return `${path}.sum: ${JSON.stringify(sum)} is not a number`;
  if (!Array.isArray(buckets)) return `${path}.buckets: an array of [upperBound, cumulativeCount] is required`;
  let previous: readonly [number, number] | undefined;
  for (const [i, bucket] of (buckets as unknown[]).entries()) {
    const at = `${path}.buckets[${i}]`;
    const [le, n] = Array.isArray(bucket) ? (bucket as unknown[]) : [];
    if (typeof le !== 'number' || !Number.isFinite(le)) return `${at}[0]: ${JSON.stringify(le)} is not a finite upper bound (+Inf is implied by count)`;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return `${at}[1]: ${JSON.stringify(n)} is not a count (an integer ≥ 0)`;
    if (previous && le <= previous[0]) return `${at}[0]: ${le} does not exceed the bound before it (${previous[0]})`;
    if (previous && n < previous[1]) return `${at}[1]: ${n} is less than the count before it (${previous[1]}); counts are cumulative`;
    if (n > count) return `${at}[1]: ${n} exceeds the sample's count (${count})`;
    previous = [le, n];
  }
  return undefined;
}

/** Labels in a canonical order, for telling samples apart. */
function labelKey(labels: MetricLabels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

/** One line of prom-client's exposition: a name (`_bucket`, `_sum`, `_count` of a histogram), labels and a value. */
export interface ExposedValue {
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/** A valid family as the lines prom-client writes; a histogram gets its `+Inf` bucket, `_sum` and `_count`. */
export function exposedValues(family: MetricFamily): ExposedValue[] {
  if (family.type !== 'histogram') return family.samples.map((s) => ({ labels: s.labels ?? {}, value: s.value }));
  return family.samples.flatMap((s) => {
    const labels = s.labels ?? {};
    return [
      ...s.buckets.map(([le, n]) => ({ metricName: `${family.name}_bucket`, labels: { ...labels, le }, value: n })),
      { metricName: `${family.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count },
      { metricName: `${family.name}_sum`, labels, value: s.sum },
      { metricName: `${family.name}_count`, labels, value: s.count },
    ];
  });
}
