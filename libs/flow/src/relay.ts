// The cluster-wide view (Hubble Relay's job): every other node of the registry is asked for its
// flows through its Observer API (`<node ip>:<hubble.listenAddress port>`), this node's come
// from its own buffer, and the answers are merged by time. A node that cannot be reached is
// named in the log and skipped; the others still answer.
import { credentials, type ChannelCredentials, type Client, type ClientReadableStream } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { Flow, FlowPeer, Logger, NodeRegistry } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import type { FlowFilterSpec, FlowsRequest } from '@cilia/api-client';
import type { ClusterFlows, StreamItem } from './api.js';
import type { FlowPredicate } from './filter.js';
import type { FlowObserver } from './observer.js';
import { observerService, toTimestamp, type ProtoTimestamp } from './proto.js';
import { bufferQuery } from './stream.js';

export interface RelayOptions {
  readonly observer: FlowObserver;
  readonly nodes: () => NodeRegistry | undefined;
  /** The port every node's Observer API listens on (its hubble.listenAddress). */
  readonly port: number;
  /** CA of the nodes' certificates (TLS); with a client certificate and key for mutual TLS. */
  readonly tls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
  readonly logger: Logger;
  /** How long one node may take to answer a query. Default 5 s. */
  readonly timeoutMs?: number;
}

type ObserverClient = Client & { GetFlows(req: object): ClientReadableStream<Record<string, unknown>> };

export class Relay implements ClusterFlows {
  readonly #o: RelayOptions;
  readonly #Client = observerService().Client;
  readonly #clients = new Map<string, ObserverClient>();
  readonly #creds: ChannelCredentials;

  constructor(options: RelayOptions) {
    this.#o = options;
    const tls = options.tls;
    this.#creds = tls
      ? credentials.createSsl(readFileSync(tls.caFile), tls.keyFile ? readFileSync(tls.keyFile) : null, tls.certFile ? readFileSync(tls.certFile) : null)
      : credentials.createInsecure();
  }

  /** The other nodes and where their Observer APIs listen. */
  peers(): { name: string; address: string }[] {
    const self = this.#o.observer.node;
    return (this.#o.nodes()?.list() ?? []).filter((n) => n.name !== self && n.ipv4).map((n) => ({ name: n.name, address: `${n.ipv4}:${this.#o.port}` }));
  }

  async query(request: FlowsRequest, matches: FlowPredicate): Promise<Flow[]> {
    const local = this.#o.observer.query({ ...bufferQuery(request), matches });
    const remote = await Promise.all(this.peers().map((p) => this.#collect(p, { ...request, follow: false }).catch((err: Error) => {
      this.#o.logger.warn({ node: p.name, address: p.address, err: err.message }, 'relay: a node did not answer; its flows are left out');
      return [] as Flow[];
    })));
    const all = [...local, ...remote.flat()].filter(matches).sort((a, b) => a.time.getTime() - b.time.getTime());
    const n = request.number;
    if (n === undefined) return all;
    return request.first ? all.slice(0, n) : all.slice(Math.max(0, all.length - n));
  }

  follow(request: FlowsRequest, matches: FlowPredicate, sink: (item: StreamItem) => boolean): () => void {
    const streams: ClientReadableStream<Record<string, unknown>>[] = [];
    for (const p of this.peers()) {
      const stream = this.#client(p.address).GetFlows(toProtoRequest({ ...request, follow: true }));
      stream.on('data', (r: Record<string, unknown>) => {
        if (r['flow']) {
          const flow = flowFromProto(r['flow'] as Record<string, unknown>);
          if (matches(flow)) sink({ flow });
        } else if (r['lost_events']) {
          const l = r['lost_events'] as { source: string; num_events_lost: number };
          sink({ lostEvents: { source: l.source as 'PERF_EVENT_RING_BUFFER', numEventsLost: Number(l.num_events_lost), node: String(r['node_name'] ?? p.name) } });
        }
      });
      stream.on('error', (err: Error & { code?: number }) => {
        if (err.code !== 1) this.#o.logger.warn({ node: p.name, err: err.message }, 'relay: a node\'s flow stream ended');
      });
      streams.push(stream);
    }
    const stopLocal = this.#o.observer.follow({ matches, onFlow: (flow) => sink({ flow }), onLost: (lostEvents) => sink({ lostEvents }) });
    for (const flow of this.#o.observer.query({ ...bufferQuery(request), matches })) sink({ flow });
    return () => {
      stopLocal();
      for (const s of streams) s.cancel();
    };
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  #client(address: string): ObserverClient {
    let c = this.#clients.get(address);
    if (!c) this.#clients.set(address, (c = new this.#Client(address, this.#creds) as unknown as ObserverClient));
    return c;
  }

  #collect(peer: { address: string }, request: FlowsRequest): Promise<Flow[]> {
    return new Promise((resolve, reject) => {
      const flows: Flow[] = [];
      const stream = this.#client(peer.address).GetFlows(toProtoRequest(request));
      const timer = setTimeout(() => {
        stream.cancel();
        reject(new Error(`no answer within ${this.#o.timeoutMs ?? 5000} ms`));
      }, this.#o.timeoutMs ?? 5000);
      stream.on('data', (r: Record<string, unknown>) => {
        if (r['flow']) flows.push(flowFromProto(r['flow'] as Record<string, unknown>));
      });
      stream.on('end', () => {
        clearTimeout(timer);
        resolve(flows);
      });
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
}

/** Cilia's request as a `GetFlowsRequest` (the peers apply the same filters). */
export function toProtoRequest(r: FlowsRequest): Record<string, unknown> {
  const filter = (f: FlowFilterSpec) => {
    const out: Record<string, unknown> = {};
    const put = (to: string, v: readonly unknown[] | undefined, map: (x: unknown) => unknown = (x) => x) => {
      if (v?.length) out[to] = v.map(map);
    };
    put('uuid', f.uuid);
    put('source_ip', f.sourceIp);
    put('source_pod', f.sourcePod);
    put('source_label', f.sourceLabel);
    put('source_identity', f.sourceIdentity);
    put('source_port', f.sourcePort, String);
    put('destination_ip', f.destinationIp);
    put('destination_pod', f.destinationPod);
    put('destination_label', f.destinationLabel);
    put('destination_identity', f.destinationIdentity);
    put('destination_port', f.destinationPort, String);
    put('verdict', f.verdict);
    put('protocol', f.protocol);
    put('reply', f.reply);
    put('node_name', f.nodeName);
    put('tcp_flags', f.tcpFlags);
    put('traffic_direction', f.trafficDirection, (d) => String(d).toUpperCase());
    put('event_type', f.eventType, (t) => ({ type: { drop: 1, trace: 4, 'policy-verdict': 5, l7: 129 }[t as string] }));
    return out;
  };
  // Filters on local endpoint ids mean nothing on another node: those are applied here only.
  const portable = (list: readonly FlowFilterSpec[] | undefined) => (list ?? []).filter((f) => !f.endpoint).map(filter);
  return {
    ...(r.number !== undefined ? { number: r.number } : {}),
    first: r.first ?? false,
    follow: r.follow ?? false,
    whitelist: (r.whitelist ?? []).some((f) => f.endpoint) ? [] : portable(r.whitelist),
    blacklist: portable(r.blacklist),
    ...(r.since ? { since: toTimestamp(new Date(r.since)) } : {}),
    ...(r.until ? { until: toTimestamp(new Date(r.until)) } : {}),
  };
}

function peerFromProto(e: Record<string, unknown> | undefined, ip: string, port: number | undefined): FlowPeer {
  const labels = Object.fromEntries(((e?.['labels'] as string[] | undefined) ?? []).map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
  }));
  const ns = e?.['namespace'] as string | undefined;
  const pod = e?.['pod_name'] as string | undefined;
  const id = Number(e?.['ID'] ?? 0);
  return { ip, identity: Number(e?.['identity'] ?? 0), labels, ...(ns ? { namespace: ns } : {}), ...(pod ? { podName: pod } : {}), ...(id ? { id } : {}), ...(port !== undefined ? { port } : {}) };
}

const EVENT_TYPE: Readonly<Record<number, Flow['eventType']>> = { 1: 'drop', 4: 'trace', 5: 'policy-verdict', 129: 'l7' };
/** Cilium's drop reason texts by number (what the proto does not carry). */
const DROP_TEXT = new Map(Object.values(datapathMaps.CILIUM_DROP_REASON).map((r) => [r.code, r.text]));

/** A `flow.Flow` from another node as a Cilia flow (what `flowToProto` wrote, read back). */
export function flowFromProto(p: Record<string, unknown>): Flow {
  const l4 = p['l4'] as Record<string, Record<string, unknown>> | undefined;
  const tcp = l4?.['TCP'];
  const udp = l4?.['UDP'];
  const sctp = l4?.['SCTP'];
  const icmp = l4?.['ICMPv4'];
  const ports = tcp ?? udp ?? sctp;
  const sport = ports ? Number(ports['source_port']) : undefined;
  const dport = ports ? Number(ports['destination_port']) : undefined;
  const ip = (p['IP'] ?? {}) as Record<string, string>;
  const t = p['time'] as ProtoTimestamp | undefined;
  const type = EVENT_TYPE[Number((p['event_type'] as Record<string, unknown> | undefined)?.['type'])] ?? 'trace';
  const dir = p['traffic_direction'];
  const reply = p['is_reply'] as { value?: boolean } | undefined;
  const drop = p['drop_reason_desc'] as string | undefined;
  const code = Number(p['drop_reason'] ?? 0);
  return {
    time: new Date(Number(t?.seconds ?? 0) * 1000 + Math.floor(Number(t?.nanos ?? 0) / 1e6)),
    ...(p['uuid'] ? { uuid: String(p['uuid']) } : {}),
    node: String(p['node_name'] ?? ''),
    verdict: String(p['verdict'] ?? 'VERDICT_UNKNOWN') as Flow['verdict'],
    ...(drop && drop !== 'DROP_REASON_UNKNOWN' ? { dropReason: drop, dropReasonCode: code, dropReasonText: DROP_TEXT.get(code) ?? String(code) } : {}),
    eventType: type,
    ...(dir === 'INGRESS' ? { direction: 'ingress' as const } : dir === 'EGRESS' ? { direction: 'egress' as const } : {}),
    ...(reply ? { isReply: reply.value === true } : {}),
    protocol: tcp ? 'TCP' : udp ? 'UDP' : sctp ? 'SCTP' : icmp ? 'ICMPv4' : 'unknown',
    source: peerFromProto(p['source'] as Record<string, unknown>, ip['source'] ?? '', sport),
    destination: peerFromProto(p['destination'] as Record<string, unknown>, ip['destination'] ?? '', dport),
    ...(tcp ? { l4: { tcp: { sourcePort: sport!, destinationPort: dport!, flags: (tcp['flags'] ?? {}) as Record<string, boolean> } } } : {}),
    ...(udp ? { l4: { udp: { sourcePort: sport!, destinationPort: dport! } } } : {}),
    ...(icmp ? { l4: { icmpv4: { type: Number(icmp['type'] ?? 0), code: Number(icmp['code'] ?? 0) } } } : {}),
    ...(p['trace_observation_point'] && p['trace_observation_point'] !== 'UNKNOWN_POINT' ? { traceObservationPoint: String(p['trace_observation_point']) } : {}),
    ...(type === 'policy-verdict' ? { policyMatchType: Number(p['policy_match_type'] ?? 0) } : {}),
  };
}
