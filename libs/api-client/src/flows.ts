/**
 * Wire types of the flow routes (`POST /v1/flows`, `GET /v1/flows/status`): what `cilia
 * observe` and `cilia monitor` send and read, and what `@cilia/flow`'s routes answer. Filters
 * follow Hubble's `FlowFilter` (observer.proto): every field set must match, any value of a
 * field may; a flow is returned when it matches a whitelist filter (or there is none) and no
 * blacklist filter.
 */
import type { Flow, FlowVerdict, TcpFlags } from '@cilia/core';

export type { Flow, FlowL4, FlowPeer, FlowVerdict, TcpFlags } from '@cilia/core';

/** A flow as JSON carries it: the time as an ISO string. */
export type FlowRecord = Omit<Flow, 'time'> & { readonly time: string };

/** What emitted a flow. */
export type FlowEventType = Flow['eventType'];

/** One filter: every field given must match; within a field, any of its values. */
export interface FlowFilterSpec {
  /** Addresses or CIDRs. */
  readonly sourceIp?: readonly string[];
  /** `namespace/pod-name-prefix`, `pod-name-prefix` (any namespace) or `namespace/` (the whole namespace). */
  readonly sourcePod?: readonly string[];
  /** Label selectors: `key=value`, `key` (present), `!key` (absent); a key without a source matches any source. */
  readonly sourceLabel?: readonly string[];
  readonly sourceIdentity?: readonly number[];
  readonly destinationIp?: readonly string[];
  readonly destinationPod?: readonly string[];
  readonly destinationLabel?: readonly string[];
  readonly destinationIdentity?: readonly number[];
  readonly verdict?: readonly FlowVerdict[];
  readonly eventType?: readonly FlowEventType[];
  /** `tcp`, `udp`, `icmp` (`icmpv4`), `icmpv6`, `sctp`; case does not matter. */
  readonly protocol?: readonly string[];
  readonly sourcePort?: readonly number[];
  readonly destinationPort?: readonly number[];
  readonly trafficDirection?: readonly ('ingress' | 'egress')[];
  readonly reply?: readonly boolean[];
  /** Node names, `*` matching any run of characters. */
  readonly nodeName?: readonly string[];
  /** Either side is this node's endpoint with one of these ids (`cilia monitor --related-to`). */
  readonly endpoint?: readonly number[];
  /** Flow ids. */
  readonly uuid?: readonly string[];
  /** Each set of flags given must all be set in the flow's TCP header. */
  readonly tcpFlags?: readonly TcpFlags[];
}

/** Body of `POST /v1/flows`. */
export interface FlowsRequest {
  readonly whitelist?: readonly FlowFilterSpec[];
  readonly blacklist?: readonly FlowFilterSpec[];
  /** At most this many flows from the buffer (the last ones; the first ones with `first`). 0: none, with `follow` only new ones. Default: every one. */
  readonly number?: number;
  readonly first?: boolean;
  /** ISO times bounding the flows from the buffer. */
  readonly since?: string;
  readonly until?: string;
  /** Keep streaming flows as they come (NDJSON of {@link FlowsStreamItem}). */
  readonly follow?: boolean;
  /** Merge the flows of every node of the cluster (the relay). */
  readonly allNodes?: boolean;
}

/** Where events were lost, as Hubble's `LostEventSource` names it. */
export type LostEventSource = 'PERF_EVENT_RING_BUFFER' | 'OBSERVER_EVENTS_QUEUE' | 'HUBBLE_RING_BUFFER';

/** Events lost since the last report (or, in a status, since the agent started). */
export interface LostEvents {
  readonly source: LostEventSource;
  readonly numEventsLost: number;
  /** The node that lost them. */
  readonly node?: string;
}

/** One line of a followed `POST /v1/flows`: a flow, or a report of events lost. */
export type FlowsStreamItem = { readonly flow: FlowRecord } | { readonly lostEvents: LostEvents };

/** Answer of `GET /v1/flows/status` (Hubble's `ServerStatus`, plus the loss counters). */
export interface FlowsStatus {
  readonly node: string;
  /** Flows in the buffer now, and its capacity. */
  readonly numFlows: number;
  readonly maxFlows: number;
  /** Flows seen since the agent started. */
  readonly seenFlows: number;
  readonly uptimeNs: number;
  /** Records the datapath could not write because the ring buffer was full (kernel side). */
  readonly lostDatapathEvents: number;
  /** Events the agent could not deliver to a follower too slow to take them (agent side). */
  readonly lostObserverEvents: number;
  /** Records of a type or size the agent does not know. */
  readonly unknownRecords: number;
}

/** A workload of the service map: a namespace and app label, a pod without one, or a reserved identity. */
export interface ServiceMapNode {
  readonly id: string;
  readonly namespace?: string;
  readonly name: string;
  readonly kind: 'workload' | 'pod' | 'reserved';
  readonly pods: readonly string[];
}

/** Connections seen from one workload to another. */
export interface ServiceMapEdge {
  readonly source: string;
  readonly target: string;
  readonly count: number;
  readonly forwarded: number;
  readonly dropped: number;
  /** dropped: drops and no reply; mixed: drops and replies; forwarded: no drops. */
  readonly verdict: 'forwarded' | 'dropped' | 'mixed';
  readonly ports: readonly string[];
  readonly l7: readonly string[];
}

/** Answer of `POST /v1/flows/servicemap` (a FlowsRequest without follow): the map, drawn as SVG and as an HTML page. */
export interface ServiceMapResponse {
  readonly nodes: readonly ServiceMapNode[];
  readonly edges: readonly ServiceMapEdge[];
  readonly svg: string;
  readonly html: string;
}
