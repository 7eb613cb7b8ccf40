// Hubble's flow filters: a flow passes when it matches some whitelist filter (or there is
// none) and no blacklist filter; within a filter every field given must match, within a field
// any value may. Filters are checked once, when compiled: a bad one is refused naming its field.
import { ApiRequestError, type Flow, type FlowFilter, type FlowPeer, type Labels } from '@cilia/core';
import type { FlowFilterSpec, FlowsRequest } from '@cilia/api-client';

/** A compiled filter. */
export type FlowPredicate = (flow: Flow) => boolean;

const PROTOCOLS: Readonly<Record<string, string>> = { tcp: 'TCP', udp: 'UDP', icmp: 'ICMPv4', icmpv4: 'ICMPv4', icmpv6: 'ICMPv6', sctp: 'SCTP' };
const VERDICTS = new Set(['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED']);
const EVENT_TYPES = new Set(['drop', 'trace', 'policy-verdict', 'l7']);

/** Compiles a request's whitelist and blacklist into one predicate; throws ApiRequestError naming the field. */
export function compileRequest(request: Pick<FlowsRequest, 'whitelist' | 'blacklist'>, path = ''): FlowPredicate {
  const white = (request.whitelist ?? []).map((f, i) => compileFilter(f, `${path}whitelist[${i}]`));
  const black = (request.blacklist ?? []).map((f, i) => compileFilter(f, `${path}blacklist[${i}]`));
  return (flow) => (white.length === 0 || white.some((p) => p(flow))) && !black.some((p) => p(flow));
}

/** The core `FlowFilter` (one filter, as `FlowSource` takes it) as a filter spec. */
export function fromCoreFilter(f: FlowFilter | undefined): FlowFilterSpec[] {
  if (!f) return [];
  const spec: Record<string, unknown> = {};
  if (f.verdict) spec['verdict'] = f.verdict;
  if (f.sourcePod) spec['sourcePod'] = [f.sourcePod];
  if (f.destinationPod) spec['destinationPod'] = [f.destinationPod];
  if (f.sourceIp) spec['sourceIp'] = f.sourceIp;
  if (f.destinationIp) spec['destinationIp'] = f.destinationIp;
  if (f.protocol) spec['protocol'] = f.protocol;
  if (f.sourceIdentity) spec['sourceIdentity'] = f.sourceIdentity;
  if (f.destinationIdentity) spec['destinationIdentity'] = f.destinationIdentity;
  if (f.eventType) spec['eventType'] = f.eventType;
  const base = spec as FlowFilterSpec;
  // Fields of either side become one filter per side.
  const sided: FlowFilterSpec[][] = [];
  if (f.port) sided.push([{ sourcePort: f.port }, { destinationPort: f.port }]);
  if (f.namespace) sided.push([{ sourcePod: f.namespace.map((n) => `${n}/`) }, { destinationPod: f.namespace.map((n) => `${n}/`) }]);
  if (f.endpoint) sided.push([{ endpoint: f.endpoint }]);
  let out: FlowFilterSpec[] = [base];
  for (const alternatives of sided) out = out.flatMap((o) => alternatives.map((a) => ({ ...o, ...a })));
  return out;
}

/** One filter as a predicate; throws ApiRequestError naming `path.field` when a value is invalid. */
export function compileFilter(spec: FlowFilterSpec, path: string): FlowPredicate {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new ApiRequestError('a filter object is required', path);
  const checks: FlowPredicate[] = [];
  const list = <T>(field: keyof FlowFilterSpec, check: (v: unknown, at: string) => T): T[] | undefined => {
    const value = (spec as Record<string, unknown>)[field];
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw new ApiRequestError('a list is required', `${path}.${field}`);
    return value.map((v, i) => check(v, `${path}.${field}[${i}]`));
  };
  for (const side of ['source', 'destination'] as const) {
    const get = (f: Flow): FlowPeer => f[side];
    const ips = list(`${side}Ip`, cidrMatcher);
    if (ips) checks.push((f) => ips.some((m) => m(get(f).ip)));
    const pods = list(`${side}Pod`, podMatcher);
    if (pods) checks.push((f) => pods.some((m) => m(get(f))));
    const labels = list(`${side}Label`, labelMatcher);
    if (labels) checks.push((f) => labels.some((m) => m(get(f).labels)));
    const ids = list(`${side}Identity`, integer);
    if (ids) checks.push((f) => ids.includes(get(f).identity));
    const ports = list(`${side}Port`, port);
    if (ports) checks.push((f) => get(f).port !== undefined && ports.includes(get(f).port!));
  }
  const verdicts = list('verdict', (v, at) => oneOf(v, VERDICTS, at));
  if (verdicts) checks.push((f) => verdicts.includes(f.verdict));
  const types = list('eventType', (v, at) => oneOf(v, EVENT_TYPES, at));
  if (types) checks.push((f) => types.includes(f.eventType));
  const protocols = list('protocol', (v, at) => {
    const p = typeof v === 'string' ? PROTOCOLS[v.toLowerCase()] : undefined;
    if (!p) throw new ApiRequestError(`${JSON.stringify(v)} is not one of ${Object.keys(PROTOCOLS).join(', ')}`, at);
    return p;
  });
  if (protocols) checks.push((f) => protocols.includes(f.protocol));
  const directions = list('trafficDirection', (v, at) => oneOf(v, new Set(['ingress', 'egress']), at));
  if (directions) checks.push((f) => f.direction !== undefined && directions.includes(f.direction));
  const replies = list('reply', (v, at) => {
    if (typeof v !== 'boolean') throw new ApiRequestError(`${JSON.stringify(v)} is not true or false`, at);
    return v;
  });
  if (replies) checks.push((f) => f.isReply !== undefined && replies.includes(f.isReply));
  const nodes = list('nodeName', (v, at) => {
    if (typeof v !== 'string' || v === '') throw new ApiRequestError('a node name or pattern is required', at);
    return new RegExp(`^${v.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  });
  if (nodes) checks.push((f) => nodes.some((r) => r.test(f.node)));
  const uuids = list('uuid', (v, at) => {
    if (typeof v !== 'string') throw new ApiRequestError('a flow id is required', at);
    return v;
  });
  if (uuids) checks.push((f) => f.uuid !== undefined && uuids.includes(f.uuid));
  const flagSets = list('tcpFlags', (v, at) => {
    if (typeof v !== 'object' || v === null) throw new ApiRequestError('an object of TCP flags is required', at);
    return Object.entries(v as Record<string, unknown>).filter(([, on]) => on === true).map(([k]) => k);
  });
  if (flagSets) checks.push((f) => flagSets.some((set) => set.every((k) => (f.l4?.tcp?.flags as Record<string, boolean> | undefined)?.[k] === true)));
  const endpoints = list('endpoint', integer);
  if (endpoints) checks.push((f) => endpoints.includes(f.source.id ?? -1) || endpoints.includes(f.destination.id ?? -1));
  const known = new Set(['sourceIp', 'sourcePod', 'sourceLabel', 'sourceIdentity', 'sourcePort', 'destinationIp', 'destinationPod', 'destinationLabel', 'destinationIdentity', 'destinationPort', 'verdict', 'eventType', 'protocol', 'trafficDirection', 'reply', 'nodeName', 'endpoint', 'uuid', 'tcpFlags']);
  for (const key of Object.keys(spec)) if (!known.has(key)) throw new ApiRequestError('unknown filter field', `${path}.${key}`);
  return (flow) => checks.every((c) => c(flow));
}

function oneOf(v: unknown, allowed: ReadonlySet<string>, at: string): string {
  if (typeof v !== 'string' || !allowed.has(v)) throw new ApiRequestError(`${JSON.stringify(v)} is not one of ${[...allowed].join(', ')}`, at);
  return v;
}

function integer(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ApiRequestError(`${JSON.stringify(v)} is not a non-negative integer`, at);
  return v;
}

function port(v: unknown, at: string): number {
  const n = integer(v, at);
  if (n > 65535) throw new ApiRequestError(`${n} is not a port (0-65535)`, at);
  return n;
}

/** `ns/prefix`, `prefix` (any namespace) or `ns/` (the namespace). */
function podMatcher(v: unknown, at: string): (p: FlowPeer) => boolean {
  if (typeof v !== 'string' || v === '') throw new ApiRequestError('a pod (namespace/name-prefix) is required', at);
  const slash = v.indexOf('/');
  const ns = slash >= 0 ? v.slice(0, slash) : undefined;
  const prefix = slash >= 0 ? v.slice(slash + 1) : v;
  return (p) => (ns === undefined || p.namespace === ns) && (prefix === '' || (p.podName?.startsWith(prefix) ?? false));
}

/** `key=value`, `key`, `!key`; a key without `source:` matches the key under any source. */
function labelMatcher(v: unknown, at: string): (labels: Labels) => boolean {
  if (typeof v !== 'string' || v === '') throw new ApiRequestError('a label selector is required', at);
  const terms = v.split(',').map((t) => t.trim());
  const preds = terms.map((t) => {
    const negate = t.startsWith('!');
    const body = negate ? t.slice(1) : t;
    const eq = body.indexOf('=');
    const key = eq >= 0 ? body.slice(0, eq) : body;
    const value = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (key === '') throw new ApiRequestError(`${JSON.stringify(t)}: a label key is required`, at);
    const keyMatches = key.includes(':') ? (k: string) => k === key : (k: string) => k === key || k.endsWith(`:${key}`);
    const has = (labels: Labels) => Object.entries(labels).some(([k, val]) => keyMatches(k) && (value === undefined || val === value));
    return negate ? (labels: Labels) => !has(labels) : has;
  });
  return (labels) => preds.every((p) => p(labels));
}

function cidrMatcher(v: unknown, at: string): (ip: string) => boolean {
  if (typeof v !== 'string') throw new ApiRequestError('an IPv4 address or CIDR is required', at);
  const [addr, lenText] = v.split('/');
  const base = ipv4ToNumber(addr ?? '');
  const len = lenText === undefined ? 32 : Number(lenText);
  if (base === undefined || !Number.isInteger(len) || len < 0 || len > 32) throw new ApiRequestError(`${JSON.stringify(v)} is not an IPv4 address or CIDR`, at);
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return (ip) => {
    const n = ipv4ToNumber(ip);
    return n !== undefined && ((n & mask) >>> 0) === ((base & mask) >>> 0);
  };
}

function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}
