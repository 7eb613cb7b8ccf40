/**
 * @cilia/flow — flow visibility: the datapath's events ring buffer read into Hubble-shaped flows
 * (enriched with both sides' endpoints, identities and labels), a bounded flow ring with Hubble's
 * filters, Hubble's flow metrics, and the agent's default `FlowSource` plugin {@link flowPlugin}.
 */
export { flowPlugin, flowConfig, type FlowConfig } from './plugin.js';
export { FlowObserver, type FlowFollower, type BufferQuery } from './observer.js';
export { FlowRing } from './ring.js';
export { Enricher, type EnricherSources } from './enrich.js';
export { buildFlow, tcpFlags, MonotonicClock, type FlowContext } from './build.js';
export { decodeRecord, recordScratch, type DatapathRecord } from './records.js';
export { compileFilter, compileRequest, fromCoreFilter, type FlowPredicate } from './filter.js';
export { HubbleMetrics, HUBBLE_METRICS, type HubbleMetric } from './metrics.js';
export { DatapathEventReader } from './reader.js';
export { flowRoutes } from './api.js';
export { ObserverServer, type ObserverServerOptions, type ObserverTls } from './grpc.js';
export { observerService, flowToProto, requestFromProto, filterFromProto, PROTO_DIR, LOADER_OPTIONS } from './proto.js';
export { streamFlows, type FlowSink } from './stream.js';
export { buildServiceMap, renderServiceMapHtml, renderServiceMapSvg, type ServiceMap, type MapNode, type MapEdge } from './servicemap.js';
export { serviceMapPages } from './api.js';
export { Relay, flowFromProto, toProtoRequest, type RelayOptions } from './relay.js';
