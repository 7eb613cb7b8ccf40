/** Label name → value of one sample. */
export type MetricLabels = Readonly<Record<string, string>>;

/** One value of a counter or gauge family. */
export interface MetricSample {
  readonly labels?: MetricLabels;
  readonly value: number;
}

/**
 * One histogram of a histogram family, already bucketed: `buckets` are `[upperBound, count]`
 * pairs, bounds ascending, each count cumulative (observations ≤ the bound). The `+Inf` bucket
 * is `count` itself and is not listed.
 */
export interface HistogramSample {
  readonly labels?: MetricLabels;
  readonly buckets: ReadonlyArray<readonly [le: number, count: number]>;
  readonly sum: number;
  readonly count: number;
}

/**
 * A metric family as Prometheus exposes it. `name` starts with `cilia_` (`cilia_agent_` is the
 * agent's own), or `hubble_` for Hubble's flow metrics; counters end in `_total`, as in Cilium (`cilia_drop_count_total`). Label names
 * follow Prometheus (`[a-zA-Z_][a-zA-Z0-9_]*`); `le` is reserved for histogram buckets.
 */
export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly samples: readonly MetricSample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly samples: readonly HistogramSample[];
    };

/**
 * Metrics a plugin exposes on the agent's `/metrics`, provided through `Tokens.MetricsCollectors`.
 * `collect` is called on every scrape once the agent has started, so it reads current state
 * (a pinned map, a counter kept in memory) and keeps no I/O of its own running. A collector
 * that throws (or whose family is invalid) is logged and skipped for that scrape; the other
 * families are still served.
 */
export interface MetricsCollector {
  /** Names the collector in the agent's log, usually the plugin's name. */
  readonly name: string;
  collect(): readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
}

/**
 * Observations kept as cumulative buckets, for a collector to report as a
 * {@link HistogramSample}. Pure and synchronous: the code that measures calls `observe`, the
 * collector calls `sample` at scrape time.
 */
export class HistogramRecorder {
  readonly #bounds: readonly number[];
  /** Per bucket (not cumulative): observations ≤ bounds[i] and > bounds[i - 1]. */
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** `bounds`: finite upper bounds, strictly ascending. */
  constructor(bounds: readonly number[]) {
    bounds.forEach((b, i) => {
      if (!Number.isFinite(b)) throw new RangeError(`bounds[${i}]: ${b} is not a finite number`);
      if (i > 0 && b <= bounds[i - 1]!) throw new RangeError(`bounds[${i}]: ${b} does not exceed bounds[${i - 1}] (${bounds[i - 1]})`);
    });
    this.#bounds = [...bounds];
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const i = this.#bounds.findIndex((b) => value <= b);
    if (i >= 0) this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  sample(labels?: MetricLabels): HistogramSample {
    let cumulative = 0;
    const buckets = this.#bounds.map((b, i) => [b, (cumulative += this.#counts[i]!)] as const);
    return { ...(labels ? { labels } : {}), buckets, sum: this.#sum, count: this.#count };
  }
}

/** Bucket bounds in seconds for latencies from sub-millisecond to tens of seconds. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
