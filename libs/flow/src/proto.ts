// Flows and filters between Cilia's types and Hubble's protobuf messages (observer.proto,
// flow.proto in ../proto, loaded by @grpc/proto-loader with the proto field names kept).
import { fileURLToPath } from 'node:url';
import { loadSync, type Options } from '@grpc/proto-loader';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import type { Flow, FlowPeer } from '@cilia/core';
import type { FlowFilterSpec, FlowsRequest, LostEvents } from '@cilia/api-client';
import { ApiRequestError } from '@cilia/core';

/** The directory holding flow/, observer/ and relay/ (beside src/ and dist/). */
export const PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

/** How the messages look in JS: proto field names, enums as their names, 64-bit as numbers. */
export const LOADER_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true, includeDirs: [PROTO_DIR] };

/** The `observer.Observer` service definition and a client constructor for it. */
export function observerService(): { service: ServiceDefinition; Client: ServiceClientConstructor } {
  const def = loadSync('observer/observer.proto', LOADER_OPTIONS);
  const pkg = loadPackageDefinition(def) as GrpcObject;
  const Client = (pkg['observer'] as GrpcObject)['Observer'] as ServiceClientConstructor;
  return { service: Client.service, Client };
}

/** Cilium's monitor message types (`event_type.type`). */
const MESSAGE_TYPE: Readonly<Record<Flow['eventType'], number>> = { drop: 1, trace: 4, 'policy-verdict': 5, l7: 129 };
const EVENT_TYPE_OF: Readonly<Record<number, Flow['eventType']>> = { 1: 'drop', 4: 'trace', 5: 'policy-verdict', 129: 'l7' };
/** Cilium's trace sub-types (`TraceToLxc` … `TraceToNetwork`) of the observation points Cilia reports. */
const TRACE_SUBTYPE: Readonly<Record<string, number>> = { TO_ENDPOINT: 0, TO_STACK: 3, TO_NETWORK: 11, FROM_NETWORK: 10 };

export interface ProtoTimestamp {
  seconds: number;
  nanos: number;
}

export function toTimestamp(d: Date): ProtoTimestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function fromTimestamp(t: ProtoTimestamp | null | undefined): Date | undefined {
  if (!t) return undefined;
  return new Date(Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6));
}

function endpoint(p: FlowPeer): Record<string, unknown> {
  return {
    ID: p.id ?? 0,
    identity: p.identity,
    namespace: p.namespace ?? '',
    labels: Object.entries(p.labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`)).sort(),
    pod_name: p.podName ?? '',
  };
}

function summary(f: Flow): string {
  const flags = f.l4?.tcp?.flags;
  if (flags) {
    const set = Object.entries(flags).filter(([, on]) => on).map(([k]) => k);
    return set.length ? `TCP Flags: ${set.join(', ')}` : 'TCP';
  }
  if (f.l4?.icmpv4) return `ICMPv4 Type ${f.l4.icmpv4.type}`;
  return f.protocol;
}

/** A flow as Hubble's `flow.Flow` message. */
export function flowToProto(f: Flow): Record<string, unknown> {
  const l4 = f.l4;
  return {
    time: toTimestamp(f.time),
    uuid: f.uuid ?? '',
    verdict: f.verdict,
    drop_reason: f.dropReasonCode ?? 0,
    IP: { source: f.source.ip, destination: f.destination.ip, ipVersion: f.source.ip.includes(':') ? 'IPv6' : 'IPv4' },
    ...(l4
      ? {
          l4: l4.tcp
            ? { TCP: { source_port: l4.tcp.sourcePort, destination_port: l4.tcp.destinationPort, flags: l4.tcp.flags ?? {} } }
            : l4.udp
              ? { UDP: { source_port: l4.udp.sourcePort, destination_port: l4.udp.destinationPort } }
              : l4.sctp
                ? { SCTP: { source_port: l4.sctp.sourcePort, destination_port: l4.sctp.destinationPort } }
                : l4.icmpv4
                  ? { ICMPv4: l4.icmpv4 }
                  : { ICMPv6: l4.icmpv6 },
        }
      : {}),
    source: endpoint(f.source),
    destination: endpoint(f.destination),
    Type: f.eventType === 'l7' ? 'L7' : 'L3_L4',
    node_name: f.node,
    event_type: { type: MESSAGE_TYPE[f.eventType], sub_type: f.eventType === 'drop' ? (f.dropReasonCode ?? 0) : f.eventType === 'trace' ? (TRACE_SUBTYPE[f.traceObservationPoint ?? ''] ?? 0) : 0 },
    traffic_direction: f.direction === 'ingress' ? 'INGRESS' : f.direction === 'egress' ? 'EGRESS' : 'TRAFFIC_DIRECTION_UNKNOWN',
    policy_match_type: f.policyMatchType ?? 0,
    trace_observation_point: f.traceObservationPoint ?? 'UNKNOWN_POINT',
    drop_reason_desc: f.dropReason ?? 'DROP_REASON_UNKNOWN',
    ...(f.isReply !== undefined ? { is_reply: { value: f.isReply }, reply: f.isReply } : {}),
    ...(f.interface ? { interface: { index: f.interface.index, name: f.interface.name ?? '' } } : {}),
    Summary: summary(f),
  };
}

/** A lost-events report as Hubble's `flow.LostEvent`. */
export function lostToProto(l: LostEvents): Record<string, unknown> {
  return { source: l.source, num_events_lost: l.numEventsLost };
}

/** Hubble's FlowFilter fields Cilia's flows never carry: a filter naming one matches nothing. */
const NEVER_MATCHING = ['source_fqdn', 'destination_fqdn', 'source_service', 'destination_service', 'source_workload', 'destination_workload', 'http_status_code', 'http_method', 'http_path', 'dns_query', 'trace_id'];

type ProtoFilter = Record<string, unknown[] | undefined>;

/** A `flow.FlowFilter` as Cilia's filter; `undefined` for one that can match no Cilia flow. */
export function filterFromProto(p: ProtoFilter, path: string): FlowFilterSpec | undefined {
  const has = (k: string) => Array.isArray(p[k]) && p[k]!.length > 0;
  if (NEVER_MATCHING.some(has)) return undefined;
  const out: Record<string, unknown[]> = {};
  const copy = (from: string, to: keyof FlowFilterSpec, map: (v: unknown, at: string) => unknown = (v) => v) => {
    if (has(from)) out[to] = p[from]!.map((v, i) => map(v, `${path}.${from}[${i}]`));
  };
  const portOf = (v: unknown, at: string) => {
    const n = Number(v);
    if (!/^\d{1,5}$/.test(String(v)) || n > 65535) throw new ApiRequestError(`${JSON.stringify(v)} is not a port`, at);
    return n;
  };
  copy('uuid', 'uuid');
  copy('source_ip', 'sourceIp');
  copy('source_pod', 'sourcePod');
  copy('source_label', 'sourceLabel');
  copy('source_identity', 'sourceIdentity', Number);
  copy('source_port', 'sourcePort', portOf);
  copy('destination_ip', 'destinationIp');
  copy('destination_pod', 'destinationPod');
  copy('destination_label', 'destinationLabel');
  copy('destination_identity', 'destinationIdentity', Number);
  copy('destination_port', 'destinationPort', portOf);
  copy('verdict', 'verdict');
  copy('protocol', 'protocol');
  copy('reply', 'reply');
  copy('node_name', 'nodeName');
  copy('tcp_flags', 'tcpFlags');
  copy('traffic_direction', 'trafficDirection', (v, at) => {
    if (v !== 'INGRESS' && v !== 'EGRESS') throw new ApiRequestError(`${JSON.stringify(v)} is not INGRESS or EGRESS`, at);
    return v.toLowerCase();
  });
  copy('event_type', 'eventType', (v, at) => {
    const t = EVENT_TYPE_OF[Number((v as { type?: number }).type)];
    if (!t) throw new ApiRequestError(`event type ${JSON.stringify((v as { type?: number }).type)} is not one Cilia reports (1 drop, 4 trace, 5 policy verdict, 129 L7)`, at);
    return t;
  });
  if (has('ip_version') && !p['ip_version']!.includes('IPv4')) return undefined;
  return out as FlowFilterSpec;
}

/** A `GetFlowsRequest` as Cilia's request; a filter no flow can match leaves the list (a whitelist left empty matches nothing). */
export function requestFromProto(r: Record<string, unknown>): { request: FlowsRequest; matchesNothing: boolean } {
  const lists = (key: 'whitelist' | 'blacklist') => ((r[key] as ProtoFilter[] | undefined) ?? []).map((f, i) => filterFromProto(f, `${key}[${i}]`));
  const white = lists('whitelist');
  const black = lists('blacklist').filter((f): f is FlowFilterSpec => f !== undefined);
  const whitelist = white.filter((f): f is FlowFilterSpec => f !== undefined);
  const since = fromTimestamp(r['since'] as ProtoTimestamp | undefined);
  const until = fromTimestamp(r['until'] as ProtoTimestamp | undefined);
  const number = Number(r['number'] ?? 0);
  const request: Record<string, unknown> = {
    ...(whitelist.length ? { whitelist } : {}),
    ...(black.length ? { blacklist: black } : {}),
    ...(since ? { since: since.toISOString() } : {}),
    ...(until ? { until: until.toISOString() } : {}),
    ...(r['first'] ? { first: true } : {}),
    ...(r['follow'] ? { follow: true } : {}),
  };
  // Hubble: number 0 without since/until means every buffered flow unless following.
  if (number > 0) request['number'] = number;
  else if (r['follow'] && !since) request['number'] = 0;
  return { request: request as FlowsRequest, matchesNothing: white.length > 0 && whitelist.length === 0 };
}
