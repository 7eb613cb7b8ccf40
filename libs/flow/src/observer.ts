// The flow source: every flow made from the datapath's records goes into a bounded ring (the
// recent history `cilia observe` and GetFlows read) and to the followers whose filter it passes;
// it is counted for the metrics. Losses are counted where they happen: the datapath's records
// that found the ring buffer full (kernel side), and flows a follower was too slow to take.
import type { Flow, FlowFilter, FlowSource, Unsubscribe } from '@cilia/core';
import type { FlowsRequest, FlowsStatus, LostEvents } from '@cilia/api-client';
import { compileRequest, fromCoreFilter, type FlowPredicate } from './filter.js';
import type { HubbleMetrics } from './metrics.js';
import { FlowRing } from './ring.js';

/** A follower: gets each flow passing its filter, and reports of events lost. */
export interface FlowFollower {
  readonly matches: FlowPredicate;
  onFlow(flow: Flow): void;
  onLost?(lost: LostEvents): void;
}

export interface FlowObserverOptions {
  readonly node: string;
  readonly capacity: number;
  readonly metrics: HubbleMetrics;
}

/** A query's flows from the buffer: filtered, bounded by time, the last (or first) `number`. */
export interface BufferQuery extends Pick<FlowsRequest, 'number' | 'first'> {
  readonly matches: FlowPredicate;
  readonly since?: Date;
  readonly until?: Date;
}

export class FlowObserver implements FlowSource {
  readonly node: string;
  readonly #ring: FlowRing<Flow>;
  readonly #followers = new Set<FlowFollower>();
  readonly #metrics: HubbleMetrics;
  readonly #started = process.hrtime.bigint();
  #seen = 0;
  #lostDatapath = 0;
  #lostObserver = 0;
  #unknown = 0;

  constructor(options: FlowObserverOptions) {
    this.node = options.node;
    this.#ring = new FlowRing(options.capacity);
    this.#metrics = options.metrics;
  }

  /** A new flow: into the ring, the metrics and every follower it passes. */
  publish(flow: Flow): void {
    this.#seen++;
    this.#ring.push(flow);
    this.#metrics.observe(flow);
    for (const f of this.#followers) if (f.matches(flow)) f.onFlow(flow);
  }

  /** Records the datapath lost (its ring buffer was full); followers are told. */
  lostInDatapath(count: number): void {
    if (count <= 0) return;
    this.#lostDatapath += count;
    this.#metrics.lost('PERF_EVENT_RING_BUFFER', count);
    const lost: LostEvents = { source: 'PERF_EVENT_RING_BUFFER', numEventsLost: count, node: this.node };
    for (const f of this.#followers) f.onLost?.(lost);
  }

  /** Flows a follower could not take (it was too slow); counted, the follower reports them itself. */
  lostInObserver(count: number): void {
    if (count <= 0) return;
    this.#lostObserver += count;
    this.#metrics.lost('OBSERVER_EVENTS_QUEUE', count);
  }

  /** A record of a type or size this agent does not know. */
  unknownRecord(): void {
    this.#unknown++;
  }

  follow(filter: FlowFilter, listener: (flow: Flow) => void): Unsubscribe;
  follow(follower: FlowFollower): Unsubscribe;
  follow(filterOrFollower: FlowFilter | FlowFollower, listener?: (flow: Flow) => void): Unsubscribe {
    const follower: FlowFollower =
      listener !== undefined ? { matches: compileRequest({ whitelist: fromCoreFilter(filterOrFollower as FlowFilter) }), onFlow: listener } : (filterOrFollower as FlowFollower);
    this.#followers.add(follower);
    return () => this.#followers.delete(follower);
  }

  recent(limit: number, filter?: FlowFilter): readonly Flow[] {
    const matches = compileRequest({ whitelist: fromCoreFilter(filter) });
    return this.query({ matches, number: limit, ...(filter?.since ? { since: filter.since } : {}), ...(filter?.until ? { until: filter.until } : {}) });
  }

  /** Flows from the buffer, oldest first. */
  query(q: BufferQuery): Flow[] {
    const since = q.since?.getTime() ?? -Infinity;
    const until = q.until?.getTime() ?? Infinity;
    const keep = (f: Flow) => {
      const t = f.time.getTime();
      return t >= since && t <= until && q.matches(f);
    };
    const n = q.number ?? Infinity;
    if (n <= 0) return [];
    if (!q.first) return Number.isFinite(n) ? this.#ring.last(n, keep) : [...this.#ring.values(keep)];
    const out: Flow[] = [];
    for (const f of this.#ring.values(keep)) {
      if (out.length >= n) break;
      out.push(f);
    }
    return out;
  }

  status(): FlowsStatus {
    return {
      node: this.node,
      numFlows: this.#ring.size,
      maxFlows: this.#ring.capacity,
      seenFlows: this.#seen,
      uptimeNs: Number(process.hrtime.bigint() - this.#started),
      lostDatapathEvents: this.#lostDatapath,
      lostObserverEvents: this.#lostObserver,
      unknownRecords: this.#unknown,
    };
  }
}
