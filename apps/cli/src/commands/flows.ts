import { writeFile } from 'node:fs/promises';
import type { FlowFilterSpec, FlowPeer, FlowRecord, FlowsRequest, FlowsStatus, FlowsStreamItem, LostEvents } from '@cilia/api-client';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { renderFields, renderTable } from '../table.js';
import { parseDuration } from './policy.js';

const EVENT_TYPES = ['drop', 'trace', 'policy-verdict', 'l7'] as const;
const VERDICTS = ['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED'] as const;
const OBSERVE_FORMATS = ['compact', 'json', 'table'] as const;
type ObserveFormat = (typeof OBSERVE_FORMATS)[number];

/** Options of `cilia observe` (commander's camel-cased flags). */
interface ObserveOptions {
  fromPod?: string[];
  toPod?: string[];
  pod?: string[];
  fromIdentity?: string[];
  toIdentity?: string[];
  identity?: string[];
  fromLabel?: string[];
  toLabel?: string[];
  label?: string[];
  fromIp?: string[];
  toIp?: string[];
  ip?: string[];
  namespace?: string[];
  verdict?: string[];
  protocol?: string[];
  port?: string[];
  fromPort?: string[];
  toPort?: string[];
  type?: string[];
  nodeName?: string[];
  since?: string;
  until?: string;
  last?: string;
  first?: string;
  follow?: boolean;
  allNodes?: boolean;
  output: ObserveFormat;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** `cilia observe` and `cilia monitor`: the agent's flows (`/v1/flows`). */
export function registerFlowCommands(program: Command, ctx: CommandContext): void {
  const observe = program
    .command('observe')
    .description("show flows from the agent's flow buffer (as `hubble observe`), optionally following new ones")
    .addOption(new Option('--from-pod <[namespace/]pod>', 'source pod (name prefix; `namespace/` for a whole namespace)').argParser(collect))
    .addOption(new Option('--to-pod <[namespace/]pod>', 'destination pod').argParser(collect))
    .addOption(new Option('--pod <[namespace/]pod>', 'either side').argParser(collect))
    .addOption(new Option('--from-identity <id>', 'source security identity').argParser(collect))
    .addOption(new Option('--to-identity <id>', 'destination security identity').argParser(collect))
    .addOption(new Option('--identity <id>', 'either side').argParser(collect))
    .addOption(new Option('--from-label <selector>', 'source labels, e.g. app=web or k8s:app=web,tier=front').argParser(collect))
    .addOption(new Option('--to-label <selector>', 'destination labels').argParser(collect))
    .addOption(new Option('--label <selector>', 'either side').argParser(collect))
    .addOption(new Option('--from-ip <ip|cidr>', 'source address').argParser(collect))
    .addOption(new Option('--to-ip <ip|cidr>', 'destination address').argParser(collect))
    .addOption(new Option('--ip <ip|cidr>', 'either side').argParser(collect))
    .addOption(new Option('-n, --namespace <namespace>', 'either side in this namespace').argParser(collect))
    .addOption(new Option('--verdict <verdict>', `one of ${VERDICTS.join(', ')}`).argParser(collect))
    .addOption(new Option('--protocol <protocol>', 'tcp, udp, icmp, sctp').argParser(collect))
    .addOption(new Option('--port <port>', 'either side\'s L4 port').argParser(collect))
    .addOption(new Option('--from-port <port>', 'source port').argParser(collect))
    .addOption(new Option('--to-port <port>', 'destination port').argParser(collect))
    .addOption(new Option('-t, --type <type>', `event type: ${EVENT_TYPES.join(', ')}`).argParser(collect))
    .addOption(new Option('--node-name <name>', 'flows seen by this node (* matches any characters)').argParser(collect))
    .addOption(new Option('--since <time|duration>', 'flows since this ISO time, or this long ago (5m, 30s)'))
    .addOption(new Option('--until <time|duration>', 'flows until this ISO time, or this long ago'))
    .addOption(new Option('--last <n>', 'the last n flows of the buffer (default 20 without --follow, --since or --until)'))
    .addOption(new Option('--first <n>', 'the first n flows of the buffer'))
    .option('-f, --follow', 'keep printing new flows as they come')
    .option('--all-nodes', 'the flows of every node of the cluster (through this agent\'s relay)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OBSERVE_FORMATS).default('compact'))
    .action(async (opts: ObserveOptions, command: Command) => {
      const request = observeRequest(opts, Date.now());
      const client = ctx.client(command);
      const print = printer(opts.output, (s) => ctx.io.stdout.write(s));
      if (!opts.follow) {
        print.flows(await client.flows.list(request));
        return;
      }
      for await (const item of client.flows.follow(request)) print.item(item);
    });
  observe
    .command('status')
    .description('flows buffered and seen, events lost in the datapath and in the agent (-o json for scripts)')
    .action(async (_opts: unknown, command: Command) => {
      const status = await ctx.client(command).flows.status();
      // `-o` is observe's own option: json prints JSON, anything else the fields.
      const json = command.parent?.opts<{ output?: string }>().output === 'json';
      ctx.io.stdout.write(json ? JSON.stringify(status, null, 2) + '\n' : statusText(status));
    });

  observe
    .command('map')
    .description('draw the service map of the buffered flows (workloads and the connections between them) into an HTML page or an SVG; observe\'s filters narrow the flows')
    .requiredOption('--out <file>', 'where to write it: a .html or .svg file')
    .action(async (mapOpts: { out: string }, command: Command) => {
      const ext = /\.(html?|svg)$/i.exec(mapOpts.out)?.[1]?.toLowerCase();
      if (!ext) throw new UsageError(`--out: ${JSON.stringify(mapOpts.out)} must end in .html or .svg`);
      const opts = command.parent!.opts<ObserveOptions>();
      if (opts.follow) throw new UsageError('a map is of the buffered flows: --follow does not apply');
      const request = observeRequest({ ...opts, ...(opts.last === undefined && opts.first === undefined ? { last: '4095' } : {}) }, Date.now());
      const map = await ctx.client(command).flows.serviceMap(request);
      await writeFile(mapOpts.out, ext === 'svg' ? map.svg : map.html).catch((err: NodeJS.ErrnoException) => {
        throw new CliError(`cannot write ${mapOpts.out}: ${err.message}`);
      });
      ctx.io.stdout.write(`${mapOpts.out}: ${map.nodes.length} workloads, ${map.edges.length} connections\n`);
    });

  program
    .command('monitor')
    .description('print datapath events as they happen (drops, traces, policy verdicts), in the style of `cilium-dbg monitor`')
    .addOption(new Option('-t, --type <type>', 'only these events: drop, trace, policy-verdict').argParser(collect))
    .addOption(new Option('--related-to <endpoint-id>', 'only events to or from this endpoint').argParser(collect))
    .option('-v, --verbose', 'also print both sides\' labels')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { type?: string[]; relatedTo?: string[]; verbose?: boolean; output: 'text' | 'json' }, command: Command) => {
      const filter: Record<string, unknown> = {};
      if (opts.type) filter['eventType'] = opts.type.map((t) => choice(t, EVENT_TYPES, '--type'));
      if (opts.relatedTo) filter['endpoint'] = opts.relatedTo.map((id) => integer(id, '--related-to'));
      const request: FlowsRequest = { number: 0, ...(Object.keys(filter).length ? { whitelist: [filter as FlowFilterSpec] } : {}) };
      ctx.io.stdout.write(opts.output === 'json' ? '' : 'Listening for events on the agent. Press Ctrl-C to quit\n');
      for await (const item of ctx.client(command).flows.follow(request)) {
        ctx.io.stdout.write(opts.output === 'json' ? `${JSON.stringify(item)}\n` : monitorText(item, opts.verbose ?? false));
      }
    });
}

/** The request `cilia observe`'s flags make; `now` in ms for relative times. */
export function observeRequest(opts: ObserveOptions, now: number): FlowsRequest {
  const base: Record<string, unknown> = {};
  const put = (field: keyof FlowFilterSpec, values: unknown[] | undefined) => {
    if (values && values.length) base[field] = values;
  };
  put('sourcePod', opts.fromPod);
  put('destinationPod', opts.toPod);
  put('sourceIdentity', opts.fromIdentity?.map((v) => integer(v, '--from-identity')));
  put('destinationIdentity', opts.toIdentity?.map((v) => integer(v, '--to-identity')));
  put('sourceLabel', opts.fromLabel);
  put('destinationLabel', opts.toLabel);
  put('sourceIp', opts.fromIp);
  put('destinationIp', opts.toIp);
  put('sourcePort', opts.fromPort?.map((v) => port(v, '--from-port')));
  put('destinationPort', opts.toPort?.map((v) => port(v, '--to-port')));
  put('verdict', opts.verdict?.map((v) => choice(v.toUpperCase(), VERDICTS, '--verdict')));
  put('protocol', opts.protocol);
  put('eventType', opts.type?.map((t) => choice(t, EVENT_TYPES, '--type')));
  put('nodeName', opts.nodeName);
  // Flags of either side: one filter per side, as hubble makes them.
  const either: [FlowFilterSpec, FlowFilterSpec][] = [];
  const side = (values: unknown[] | undefined, from: keyof FlowFilterSpec, to: keyof FlowFilterSpec) => {
    if (values && values.length) either.push([{ [from]: values }, { [to]: values }]);
  };
  side(opts.pod, 'sourcePod', 'destinationPod');
  side(opts.namespace?.map((n) => `${n}/`), 'sourcePod', 'destinationPod');
  side(opts.identity?.map((v) => integer(v, '--identity')), 'sourceIdentity', 'destinationIdentity');
  side(opts.label, 'sourceLabel', 'destinationLabel');
  side(opts.ip, 'sourceIp', 'destinationIp');
  side(opts.port?.map((v) => port(v, '--port')), 'sourcePort', 'destinationPort');
  let filters: FlowFilterSpec[] = [base as FlowFilterSpec];
  for (const [a, b] of either) filters = filters.flatMap((f) => [mergeFilter(f, a, '--pod/--namespace'), mergeFilter(f, b, '--pod/--namespace')]);
  const request: Record<string, unknown> = {};
  if (filters.some((f) => Object.keys(f).length > 0)) request['whitelist'] = filters;
  if (opts.since) request['since'] = when(opts.since, '--since', now);
  if (opts.until) request['until'] = when(opts.until, '--until', now);
  if (opts.last !== undefined && opts.first !== undefined) throw new UsageError('--last and --first cannot be combined');
  if (opts.first !== undefined) {
    if (opts.follow) throw new UsageError('--first cannot be combined with --follow');
    request['number'] = integer(opts.first, '--first');
    request['first'] = true;
  } else if (opts.last !== undefined) request['number'] = integer(opts.last, '--last');
  else if (!opts.since && !opts.until) request['number'] = opts.follow ? 0 : 20;
  if (opts.allNodes) request['allNodes'] = true;
  return request as FlowsRequest;
}

function mergeFilter(f: FlowFilterSpec, add: FlowFilterSpec, flags: string): FlowFilterSpec {
  const out: Record<string, unknown[]> = { ...(f as Record<string, unknown[]>) };
  for (const [k, v] of Object.entries(add) as [string, unknown[]][]) {
    // --from-pod x with --namespace y on the same side: both must hold, which one field cannot say.
    if (out[k]) throw new UsageError(`${flags}: cannot be combined with a --from-/--to- flag of the same kind`);
    out[k] = v;
  }
  return out as FlowFilterSpec;
}

function when(text: string, flag: string, now: number): string {
  if (/^\d/.test(text) && /[ms]$|h$/.test(text) && !text.includes('-')) return new Date(now - parseDuration(text, flag)).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`${flag}: expected an ISO time or a duration like 5m, got ${JSON.stringify(text)}`);
  return new Date(t).toISOString();
}

function integer(text: string, flag: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new UsageError(`${flag}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function port(text: string, flag: string): number {
  const n = integer(text, flag);
  if (n > 65535) throw new UsageError(`${flag}: ${n} is not a port (0-65535)`);
  return n;
}

function choice<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

// ---- output ------------------------------------------------------------------------------

const RESERVED = /^reserved:(.+)$/;

/** `namespace/pod:port (ID:n)`, or `ip:port (world)` for a reserved identity. */
export function peerText(p: FlowPeer): string {
  const where = p.podName ? `${p.namespace ? `${p.namespace}/` : ''}${p.podName}` : p.ip;
  const port = p.port !== undefined ? `:${p.port}` : '';
  const reserved = Object.keys(p.labels).map((k) => RESERVED.exec(k)?.[1]).find((n) => n !== undefined);
  return `${where}${port} (${reserved ?? `ID:${p.identity}`})`;
}

function tcpFlagsText(f: FlowRecord): string {
  const flags = f.l4?.tcp?.flags;
  if (!flags) return '';
  const set = Object.entries(flags).filter(([, on]) => on).map(([k]) => k);
  return set.length ? `TCP Flags: ${set.join(', ')}` : '';
}

/** Hubble's type column: the drop reason, the observation point, or the policy verdict. */
function typeText(f: FlowRecord): string {
  if (f.eventType === 'drop') return f.dropReasonText ?? 'drop';
  if (f.eventType === 'policy-verdict') {
    const match = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all'][f.policyMatchType ?? 0] ?? 'none';
    return `policy-verdict:${match} ${(f.direction ?? '').toUpperCase()} ${f.verdict === 'DROPPED' ? 'DENIED' : 'ALLOWED'}`;
  }
  return (f.traceObservationPoint ?? f.eventType).toLowerCase().replace(/_/g, '-');
}

function timeText(iso: string): string {
  const d = new Date(iso);
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  return `${month} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 23)}`;
}

/** One flow as `hubble observe` prints it (compact). */
export function compactText(f: FlowRecord): string {
  const arrow = f.isReply === undefined ? '<>' : f.isReply ? '<-' : '->';
  const verdict = f.eventType === 'policy-verdict' ? '' : ` ${f.verdict}`;
  const flags = tcpFlagsText(f);
  return `${timeText(f.time)} [${f.node}]: ${peerText(f.source)} ${arrow} ${peerText(f.destination)} ${typeText(f)}${verdict}${flags ? ` (${flags})` : ''}\n`;
}

function lostText(l: LostEvents): string {
  const where = l.source === 'PERF_EVENT_RING_BUFFER' ? 'in the datapath (its ring buffer was full)' : 'in the agent (this client was too slow)';
  return `EVENTS LOST: ${l.numEventsLost} ${where}${l.node ? ` on ${l.node}` : ''}\n`;
}

const TABLE_HEADERS = ['TIMESTAMP', 'NODE', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'];
const tableRow = (f: FlowRecord) => [timeText(f.time), f.node, peerText(f.source), peerText(f.destination), typeText(f), f.verdict, tcpFlagsText(f) || f.protocol];

function printer(format: ObserveFormat, write: (s: string) => void) {
  let header = false;
  const one = (f: FlowRecord) => {
    if (format === 'json') write(`${JSON.stringify(f)}\n`);
    else if (format === 'compact') write(compactText(f));
    else {
      if (!header) write(`${TABLE_HEADERS.join('   ')}\n`);
      header = true;
      write(`${tableRow(f).join('   ')}\n`);
    }
  };
  return {
    flows(flows: readonly FlowRecord[]) {
      if (format === 'table') write(flows.length ? renderTable(TABLE_HEADERS, flows.map(tableRow)) : 'No flows.\n');
      else flows.forEach(one);
    },
    item(item: FlowsStreamItem) {
      if ('flow' in item) one(item.flow);
      else write(format === 'json' ? `${JSON.stringify(item)}\n` : lostText(item.lostEvents));
    },
  };
}

function statusText(s: FlowsStatus): string {
  return renderFields([
    ['Node', s.node],
    ['Flows', `${s.numFlows}/${s.maxFlows} buffered, ${s.seenFlows} seen`],
    ['Lost (datapath)', String(s.lostDatapathEvents)],
    ['Lost (agent)', String(s.lostObserverEvents)],
    ['Unknown records', String(s.unknownRecords)],
    ['Uptime', `${Math.round(s.uptimeNs / 1e9)}s`],
  ]);
}

/** The pipeline a trace observation point stands for, as `cilium-dbg monitor` words it. */
const TRACE_TEXT: Readonly<Record<string, string>> = { TO_ENDPOINT: '-> endpoint', TO_STACK: '-> stack', TO_NETWORK: '-> network', FROM_NETWORK: '<- network' };
const PROTO_NUMBER: Readonly<Record<string, number>> = { TCP: 6, UDP: 17, ICMPv4: 1, SCTP: 132, ICMPv6: 58 };

function tuple(f: FlowRecord): string {
  const port = (p: FlowPeer) => (p.port !== undefined ? `:${p.port}` : '');
  const flags = f.l4?.tcp?.flags ? Object.entries(f.l4.tcp.flags).filter(([, on]) => on).map(([k]) => k).join(', ') : '';
  const icmp = f.l4?.icmpv4 ? ` type ${f.l4.icmpv4.type}` : '';
  return `${f.source.ip}${port(f.source)} -> ${f.destination.ip}${port(f.destination)} ${f.protocol.toLowerCase()}${flags ? ` ${flags}` : ''}${icmp}`;
}

function labelsText(p: FlowPeer): string {
  const labels = Object.entries(p.labels).map(([k, v]) => (v === '' ? k : `${k}=${v}`));
  const who = p.podName ? ` ${p.namespace ? `${p.namespace}/` : ''}${p.podName}` : '';
  return `${p.id !== undefined ? `endpoint ${p.id}, ` : ''}identity ${p.identity}${who} [${labels.join(' ')}]`;
}

/** One event as `cilium-dbg monitor` prints it; with `verbose`, both sides' labels under it. */
export function monitorText(item: FlowsStreamItem, verbose: boolean): string {
  if ('lostEvents' in item) return lostText(item.lostEvents);
  const f = item.flow;
  const local = f.direction === 'ingress' ? f.destination : f.source;
  const ifindex = f.interface ? `, ifindex ${f.interface.index}` : '';
  const ids = `identity ${f.source.identity}->${f.destination.identity}`;
  let line: string;
  if (f.eventType === 'drop') {
    line = `xx drop (${f.dropReasonText ?? f.dropReason}) ${f.direction === 'ingress' ? 'to' : 'from'} endpoint ${local.id ?? 0}${ifindex}, ${ids}: ${tuple(f)}`;
  } else if (f.eventType === 'policy-verdict') {
    const match = ['none', 'L3-Only', 'L3-L4', 'L4-Only', 'all'][f.policyMatchType ?? 0] ?? 'none';
    const remote = f.direction === 'ingress' ? f.source : f.destination;
    line = `Policy verdict log: local EP ID ${local.id ?? 0}, remote ID ${remote.identity}, proto ${PROTO_NUMBER[f.protocol] ?? 0}, ${f.direction}, action ${f.verdict === 'DROPPED' ? 'deny' : 'allow'}, match ${match}, ${tuple(f)}`;
  } else {
    const to = TRACE_TEXT[f.traceObservationPoint ?? ''] ?? `-> ${f.traceObservationPoint ?? 'unknown'}`;
    const target = f.traceObservationPoint === 'TO_ENDPOINT' ? ` ${f.destination.id ?? 0}` : '';
    const state = f.isReply ? ' state reply' : '';
    line = `${to}${target}, ${ids}${state}${ifindex}: ${tuple(f)}`;
  }
  if (!verbose) return `${line}\n`;
  return `${line}\n  src: ${labelsText(f.source)}\n  dst: ${labelsText(f.destination)}\n`;
}
