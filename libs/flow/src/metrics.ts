// Hubble's flow metrics, named and labelled as Hubble's handlers do (flow, drop, tcp, policy,
// port-distribution, lost events), counted as flows are made and served at scrape time.
import type { Flow, MetricFamily, MetricSample } from '@cilia/core';
import type { LostEventSource } from '@cilia/api-client';

/** Hubble's names of the metric handlers a config may enable. */
export const HUBBLE_METRICS = ['flow', 'drop', 'tcp', 'policy', 'port-distribution'] as const;
export type HubbleMetric = (typeof HUBBLE_METRICS)[number];

/** Hubble's `subtype` label of each trace observation point. */
const SUBTYPE: Readonly<Record<string, string>> = {
  TO_ENDPOINT: 'to-endpoint',
  TO_STACK: 'to-stack',
  TO_NETWORK: 'to-network',
  FROM_NETWORK: 'from-network',
  TO_HOST: 'to-host',
  TO_OVERLAY: 'to-overlay',
  FROM_ENDPOINT: 'from-endpoint',
};
const TYPE: Readonly<Record<Flow['eventType'], string>> = { drop: 'Drop', trace: 'Trace', 'policy-verdict': 'PolicyVerdict', l7: 'L7' };
const MATCH: Readonly<Record<number, string>> = { 0: 'none', 1: 'l3-only', 2: 'l3-l4', 3: 'l4-only', 4: 'all' };

/** Counters keyed by their label values. */
class CounterVec {
  readonly #values = new Map<string, number>();
  constructor(readonly labelNames: readonly string[]) {}

  inc(values: readonly string[], by = 1): void {
    const key = values.join('\u0000');
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  samples(): MetricSample[] {
    return [...this.#values].map(([key, value]) => {
      const parts = key.split('\u0000');
      return { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, parts[i]!])), value };
    });
  }
}

export class HubbleMetrics {
  readonly #enabled: ReadonlySet<HubbleMetric>;
  readonly #flows = new CounterVec(['protocol', 'type', 'subtype', 'verdict']);
  readonly #drops = new CounterVec(['reason', 'protocol']);
  readonly #tcp = new CounterVec(['flag', 'family']);
  readonly #policy = new CounterVec(['direction', 'match', 'action']);
  readonly #ports = new CounterVec(['protocol', 'port']);
  readonly #lost = new CounterVec(['source']);

  constructor(enabled: readonly HubbleMetric[] = HUBBLE_METRICS) {
    this.#enabled = new Set(enabled);
    // Present from the start at 0, so an alert on their increase sees the first loss.
    for (const source of ['perf_event_ring_buffer', 'observer_events_queue']) this.#lost.inc([source], 0);
  }

  observe(flow: Flow): void {
    const on = this.#enabled;
    if (on.has('flow')) this.#flows.inc([flow.protocol, TYPE[flow.eventType], flow.traceObservationPoint ? (SUBTYPE[flow.traceObservationPoint] ?? '') : '', flow.verdict]);
    if (flow.verdict === 'DROPPED' && flow.eventType === 'drop' && on.has('drop')) this.#drops.inc([flow.dropReason ?? 'DROP_REASON_UNKNOWN', flow.protocol]);
    if (flow.eventType === 'policy-verdict' && on.has('policy')) {
      this.#policy.inc([flow.direction ?? 'unknown', MATCH[flow.policyMatchType ?? 0] ?? 'none', flow.verdict.toLowerCase()]);
    }
    if (flow.verdict !== 'FORWARDED' && flow.verdict !== 'REDIRECTED') return;
    const tcp = flow.l4?.tcp;
    if (tcp?.flags && on.has('tcp')) {
      if (tcp.flags.SYN) this.#tcp.inc([tcp.flags.ACK ? 'SYN-ACK' : 'SYN', 'IPv4']);
      if (tcp.flags.FIN) this.#tcp.inc(['FIN', 'IPv4']);
      if (tcp.flags.RST) this.#tcp.inc(['RST', 'IPv4']);
    }
    if (flow.isReply || !on.has('port-distribution')) return;
    const port = tcp?.destinationPort ?? flow.l4?.udp?.destinationPort ?? flow.l4?.sctp?.destinationPort;
    if (port !== undefined) this.#ports.inc([flow.protocol, String(port)]);
  }

  /** Events lost at `source` (Hubble's `LostEventSource`, its label lower-cased). */
  lost(source: LostEventSource, count: number): void {
    if (count > 0) this.#lost.inc([source.toLowerCase()], count);
  }

  families(): MetricFamily[] {
    const on = this.#enabled;
    const families: MetricFamily[] = [];
    if (on.has('flow')) families.push({ name: 'hubble_flows_processed_total', help: 'Total number of flows processed', type: 'counter', samples: this.#flows.samples() });
    if (on.has('drop')) families.push({ name: 'hubble_drop_total', help: 'Number of drops', type: 'counter', samples: this.#drops.samples() });
    if (on.has('tcp')) families.push({ name: 'hubble_tcp_flags_total', help: 'TCP flag occurrences', type: 'counter', samples: this.#tcp.samples() });
    if (on.has('policy')) families.push({ name: 'hubble_policy_verdicts_total', help: 'Number of policy verdicts', type: 'counter', samples: this.#policy.samples() });
    if (on.has('port-distribution')) families.push({ name: 'hubble_port_distribution_total', help: 'Numbers of packets distributed by destination port', type: 'counter', samples: this.#ports.samples() });
    families.push({ name: 'hubble_lost_events_total', help: 'Number of lost events', type: 'counter', samples: this.#lost.samples() });
    return families;
  }
}
