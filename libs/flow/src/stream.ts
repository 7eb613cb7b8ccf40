// One followed query, whatever carries it (NDJSON on the agent socket, a GetFlows stream): the
// buffered flows first, then each new one and every report of events lost. A consumer that
// falls behind (its transport's buffer over a bound) loses flows instead of growing the agent's
// memory; they are counted, and it is told how many once it takes writes again.
import type { FlowsRequest, LostEvents } from '@cilia/api-client';
import type { ClusterFlows, StreamItem } from './api.js';
import type { FlowPredicate } from './filter.js';
import type { FlowObserver } from './observer.js';

export interface FlowSink {
  /** Writes one item. */
  write(item: StreamItem): unknown;
  /** Whether the transport holds more than it should: new flows are dropped meanwhile. */
  congested(): boolean;
  /** Ends the stream (a query that does not follow). */
  end(): void;
}

export interface StreamFlowsOptions {
  readonly observer: FlowObserver;
  readonly request: FlowsRequest;
  readonly matches: FlowPredicate;
  readonly sink: FlowSink;
  /** The relay, for `allNodes`. */
  readonly remote?: ClusterFlows | undefined;
}

/** The buffered flows as `query` finds them. */
export function bufferQuery(request: FlowsRequest) {
  return {
    ...(request.number !== undefined ? { number: request.number } : {}),
    ...(request.first ? { first: true } : {}),
    ...(request.since ? { since: new Date(request.since) } : {}),
    ...(request.until ? { until: new Date(request.until) } : {}),
  };
}

/** Starts streaming; returns what stops it (call it when the consumer goes). */
export function streamFlows(o: StreamFlowsOptions): () => void {
  const { observer, request, matches, sink } = o;
  let dropped = 0;
  const write = (item: StreamItem): boolean => {
    if (sink.congested()) {
      if ('flow' in item) {
        dropped++;
        observer.lostInObserver(1);
      }
      return false;
    }
    if (dropped > 0) {
      const lost: LostEvents = { source: 'OBSERVER_EVENTS_QUEUE', numEventsLost: dropped, node: observer.node };
      dropped = 0;
      sink.write({ lostEvents: lost });
    }
    sink.write(item);
    return true;
  };
  if (o.remote) {
    if (!request.follow) {
      let stopped = false;
      void o.remote.query(request, matches).then(
        (flows) => {
          if (stopped) return;
          for (const flow of flows) sink.write({ flow });
          sink.end();
        },
        () => sink.end(),
      );
      return () => (stopped = true);
    }
    return o.remote.follow(request, matches, write);
  }
  for (const flow of observer.query({ ...bufferQuery(request), matches })) sink.write({ flow });
  if (!request.follow) {
    sink.end();
    return () => {};
  }
  return observer.follow({ matches, onFlow: (flow) => write({ flow }), onLost: (lostEvents) => write({ lostEvents }) });
}
