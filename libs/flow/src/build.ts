// A datapath record becomes a flow shaped like Hubble's: verdict, Cilium's drop reason number
// and text, L4 with TCP flags, both sides enriched, traffic direction of the connection,
// is_reply, observation point, interface and policy match type.
import { randomUUID } from 'node:crypto';
import type { Flow, FlowL4, FlowPeer, TcpFlags } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import type { Enricher } from './enrich.js';
import type { DatapathRecord, PacketRecord, VerdictRecord } from './records.js';

const { AttachPointIndex, CtStatus, CILIUM_DROP_REASON, Direction, PolicyVerdict, TracePoint } = datapathMaps;

/** Hubble's `TraceObservationPoint` of each Cilia trace point. */
const OBSERVATION_POINT: Readonly<Record<number, string>> = {
  [TracePoint.toEndpoint]: 'TO_ENDPOINT',
  [TracePoint.toStack]: 'TO_STACK',
  [TracePoint.toNetwork]: 'TO_NETWORK',
  [TracePoint.fromNetwork]: 'FROM_NETWORK',
};

/** The direction, seen from the endpoint or node, of the pipeline that emitted a record. */
const PIPELINE_DIRECTION: Readonly<Record<number, 'ingress' | 'egress'>> = {
  [AttachPointIndex['from-container']]: 'egress',
  [AttachPointIndex['to-container']]: 'ingress',
  [AttachPointIndex['from-netdev']]: 'ingress',
  [AttachPointIndex['to-netdev']]: 'egress',
};

const PROTOCOL: Readonly<Record<number, string>> = { 1: 'ICMPv4', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

/** Converts the datapath's CLOCK_MONOTONIC nanoseconds to wall-clock time. */
export class MonotonicClock {
  #offsetMs = 0;
  #at = 0;

  constructor() {
    this.sync();
  }

  /** Re-measures the offset (the wall clock may be stepped). */
  sync(): void {
    this.#offsetMs = Date.now() - Number(process.hrtime.bigint() / 1000n) / 1000;
    this.#at = Date.now();
  }

  toDate(ns: bigint): Date {
    if (Date.now() - this.#at > 10_000) this.sync();
    return new Date(this.#offsetMs + Number(ns / 1000n) / 1000);
  }
}

/** What building a flow needs besides the record. */
export interface FlowContext {
  readonly node: string;
  readonly enricher: Enricher;
  readonly clock: MonotonicClock;
}

/** The flow of one datapath record. */
export function buildFlow(r: DatapathRecord, ctx: FlowContext): Flow {
  return r.kind === 'policy-verdict' ? verdictFlow(r.record, ctx) : packetFlow(r.kind, r.record, ctx);
}

function packetFlow(kind: 'drop' | 'trace', ev: PacketRecord, ctx: FlowContext): Flow {
  const { l4, protocol, sport, dport } = layer4(ev.proto, ev.sport, ev.dport, ev.tcpFlags, ev.icmpType);
  const reply = ev.ctStatus === CtStatus.reply ? true : ev.ctStatus === CtStatus.untracked ? undefined : false;
  const pipeline = PIPELINE_DIRECTION[ev.hdr.source];
  // Hubble's traffic direction is the connection's: a reply travels against it.
  const direction = pipeline && reply !== undefined ? (reply ? flip(pipeline) : pipeline) : pipeline;
  const source = peer(ctx, ev.saddr, ev.srcIdentity, sport);
  const destination = peer(ctx, ev.daddr, ev.dstIdentity, dport);
  const drop = kind === 'drop' ? CILIUM_DROP_REASON[ev.hdr.subtype] : undefined;
  return {
    time: ctx.clock.toDate(ev.hdr.tsNs),
    uuid: randomUUID(),
    node: ctx.node,
    verdict: kind === 'drop' ? 'DROPPED' : 'FORWARDED',
    ...(kind === 'drop' ? { dropReason: drop?.name ?? 'DROP_REASON_UNKNOWN', dropReasonCode: drop?.code ?? ev.hdr.subtype, dropReasonText: drop?.text ?? String(ev.hdr.subtype) } : {}),
    eventType: kind,
    ...(direction ? { direction } : {}),
    ...(reply !== undefined ? { isReply: reply } : {}),
    protocol,
    source,
    destination,
    ...(l4 ? { l4 } : {}),
    ...(kind === 'trace' ? { traceObservationPoint: OBSERVATION_POINT[ev.hdr.subtype] ?? 'UNKNOWN_POINT' } : {}),
    ...(ev.hdr.ifindex ? { interface: { index: ev.hdr.ifindex } } : {}),
    length: ev.len,
  };
}

function verdictFlow(ev: VerdictRecord, ctx: FlowContext): Flow {
  const { l4, protocol, sport, dport } = layer4(ev.proto, ev.sport, ev.dport, 0, ev.proto === 1 ? ev.dport : 0);
  const direction = ev.direction === Direction.egress ? 'egress' : 'ingress';
  const denied = ev.hdr.subtype === PolicyVerdict.denied;
  const drop = denied ? CILIUM_DROP_REASON[ev.dropReason] : undefined;
  // The remote identity is the one policy looked at; the local side is the endpoint itself.
  const local = ctx.enricher.endpoint(ev.endpointId);
  const srcIdentity = direction === 'ingress' ? ev.remoteIdentity : (local?.identity ?? 0);
  const dstIdentity = direction === 'ingress' ? (local?.identity ?? 0) : ev.remoteIdentity;
  return {
    time: ctx.clock.toDate(ev.hdr.tsNs),
    uuid: randomUUID(),
    node: ctx.node,
    verdict: denied ? 'DROPPED' : 'FORWARDED',
    ...(drop ? { dropReason: drop.name, dropReasonCode: drop.code, dropReasonText: drop.text } : {}),
    eventType: 'policy-verdict',
    direction,
    isReply: false,
    protocol,
    source: peer(ctx, ev.saddr, srcIdentity, sport),
    destination: peer(ctx, ev.daddr, dstIdentity, dport),
    ...(l4 ? { l4 } : {}),
    ...(ev.hdr.ifindex ? { interface: { index: ev.hdr.ifindex } } : {}),
    policyMatchType: ev.matchType,
  };
}

function peer(ctx: FlowContext, ip: string, identity: number, port: number | undefined): FlowPeer {
  return ctx.enricher.peer(ip, identity, port);
}

function flip(d: 'ingress' | 'egress'): 'ingress' | 'egress' {
  return d === 'ingress' ? 'egress' : 'ingress';
}

/** TCP flags of the header's 14th byte, as Hubble names them (only the ones set). */
export function tcpFlags(bits: number): TcpFlags {
  const f: Record<string, boolean> = {};
  if (bits & 0x01) f['FIN'] = true;
  if (bits & 0x02) f['SYN'] = true;
  if (bits & 0x04) f['RST'] = true;
  if (bits & 0x08) f['PSH'] = true;
  if (bits & 0x10) f['ACK'] = true;
  if (bits & 0x20) f['URG'] = true;
  if (bits & 0x40) f['ECE'] = true;
  if (bits & 0x80) f['CWR'] = true;
  return f;
}

function layer4(proto: number, sport: number, dport: number, flags: number, icmpType: number): { l4?: FlowL4; protocol: string; sport?: number; dport?: number } {
  const protocol = PROTOCOL[proto] ?? (proto === 0 ? 'unknown' : `proto-${proto}`);
  switch (proto) {
    case 6:
      return { protocol, sport, dport, l4: { tcp: { sourcePort: sport, destinationPort: dport, flags: tcpFlags(flags) } } };
    case 17:
      return { protocol, sport, dport, l4: { udp: { sourcePort: sport, destinationPort: dport } } };
    case 132:
      return { protocol, sport, dport, l4: { sctp: { sourcePort: sport, destinationPort: dport } } };
    case 1:
      return { protocol, l4: { icmpv4: { type: icmpType, code: 0 } } };
    default:
      return { protocol };
  }
}
