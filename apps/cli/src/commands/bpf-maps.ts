import type { BpfCtEntry, BpfEndpointEntry, BpfIpCacheEntry, BpfMapSummary, BpfNatEntry, BpfProgramList, MetricFamilyView, RealizedEndpointPolicy } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderTable } from '../table.js';
import { bpfGroup } from './bpf.js';
import { policyMapText } from './endpoint.js';

/** One `cilia bpf <map> list` command: a GET, and the table people read. */
function listCommand<T>(parent: Command, ctx: CommandContext, name: string, description: string, fetch: (ctx: CommandContext, command: Command) => Promise<T>, table: (data: T) => string): void {
  parent
    .command(name)
    .description(description)
    .helpCommand(false)
    .command('list')
    .alias('ls')
    .description(description)
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      ctx.io.stdout.write(render(opts.output, await fetch(ctx, command), table));
    });
}

/**
 * The inspection commands of `cilium-dbg`: `cilia bpf ct|nat|ipcache|endpoint list`,
 * `cilia bpf policy get EP`, `cilia bpf prog list`, `cilia map list`, `cilia metrics list`.
 */
export function registerInspectionCommands(program: Command, ctx: CommandContext): void {
  const bpf = bpfGroup(program);
  listCommand(bpf, ctx, 'ct', 'the connection tracking map (cilia_ct)', (c, cmd) => c.client(cmd).bpf.ct(), ctTable);
  listCommand(bpf, ctx, 'nat', 'the source NAT map (cilia_snat)', (c, cmd) => c.client(cmd).bpf.nat(), natTable);
  listCommand(bpf, ctx, 'ipcache', 'the ipcache as the datapath holds it (cilia_ipcache)', (c, cmd) => c.client(cmd).bpf.ipcache(), bpfIpcacheTable);
  listCommand(bpf, ctx, 'endpoint', 'the endpoints map (cilia_endpoints)', (c, cmd) => c.client(cmd).bpf.endpoints(), bpfEndpointTable);
  listCommand(bpf, ctx, 'prog', "the agent's programs, with run counts and average run time (kernel.bpf_stats_enabled)", (c, cmd) => c.client(cmd).bpf.progs(), progTable);

  bpf
    .command('policy')
    .description("an endpoint's policy map")
    .helpCommand(false)
    .command('get')
    .argument('<endpoint>', 'endpoint id')
    .description("the policy map of endpoint EP as the datapath holds it: DIRECTION IDENTITY PROTOCOL PORT(S) VERDICT")
    .addOption(outputOption())
    .action(async (id: string, opts: { output: OutputFormat }, command: Command) => {
      if (!/^\d{1,9}$/.test(id)) throw new UsageError(`endpoint: expected an endpoint id, got ${JSON.stringify(id)}`);
      const endpoint = await ctx.client(command).endpoints.get(Number(id));
      if (!endpoint.policy) throw new CliError(`endpoint ${id} has no policy map: the agent runs without a policy repository`);
      ctx.io.stdout.write(render(opts.output, endpoint.policy, (p: RealizedEndpointPolicy) => policyMapText(p)));
    });

  listCommand(program, ctx, 'map', 'every map pinned under the agent\'s pin root: entries, capacity, pressure', (c, cmd) => c.client(cmd).maps(), mapTable);
  listCommand(program, ctx, 'metrics', 'every metric the agent exposes on /metrics', (c, cmd) => c.client(cmd).metrics(), metricsTable);
}

const hostPort = (addr: string, port: number) => (port ? `${addr}:${port}` : addr);

export function ctTable(entries: readonly BpfCtEntry[]): string {
  if (!entries.length) return 'No connection tracking entries.\n';
  return renderTable(
    ['PROTOCOL', 'SOURCE', 'DESTINATION', 'STATE', 'EXPIRES', 'PACKETS', 'BYTES', 'IDENTITY', 'FLAGS'],
    entries.map((e) => [e.protocol, hostPort(e.source, e.sourcePort), hostPort(e.destination, e.destinationPort), e.state, `${Math.round(e.expiresInSeconds)}s`, `${e.packetsOriginal}/${e.packetsReply}`, `${e.bytesOriginal}/${e.bytesReply}`, String(e.sourceIdentity), e.flags.join(',') || NONE]),
  );
}

export function natTable(entries: readonly BpfNatEntry[]): string {
  if (!entries.length) return 'No NAT entries.\n';
  return renderTable(
    ['DIRECTION', 'PROTOCOL', 'SOURCE', 'DESTINATION', 'TRANSLATED', 'EXPIRES'],
    entries.map((e) => [e.direction, e.protocol, hostPort(e.source, e.sourcePort), hostPort(e.destination, e.destinationPort), hostPort(e.translatedAddress, e.translatedPort), `${Math.round(e.expiresInSeconds)}s`]),
  );
}

export function bpfIpcacheTable(entries: readonly BpfIpCacheEntry[]): string {
  return renderTable(['PREFIX', 'IDENTITY', 'TUNNEL ENDPOINT', 'FLAGS'], entries.map((e) => [e.prefix, String(e.identity), e.tunnelEndpoint === '0.0.0.0' ? NONE : e.tunnelEndpoint, String(e.flags)]));
}

export function bpfEndpointTable(entries: readonly BpfEndpointEntry[]): string {
  return renderTable(
    ['ADDRESS', 'ENDPOINT', 'IDENTITY', 'IFINDEX', 'HOST IFINDEX', 'MAC', 'HOST MAC', 'FLAGS'],
    entries.map((e) => [e.address, String(e.endpointId), String(e.identity), String(e.ifindex), String(e.hostIfindex), e.mac, e.hostMac, e.host ? 'host' : NONE]),
  );
}

export function progTable(list: BpfProgramList): string {
  const stats = list.statsEnabled ? 'Run statistics: on (kernel.bpf_stats_enabled=1)\n' : 'Run statistics: off (sysctl -w kernel.bpf_stats_enabled=1 to count runs and time)\n';
  return (
    stats +
    renderTable(
      ['ID', 'NAME', 'TYPE', 'TAG', 'RUNS', 'AVG RUN TIME'],
      list.programs.map((p) => [String(p.id), p.name, p.type, p.tag, String(p.runCount), p.runCount ? `${p.averageRunTimeNs}ns` : NONE]),
    )
  );
}

export function mapTable(maps: readonly BpfMapSummary[]): string {
  return renderTable(
    ['NAME', 'TYPE', 'ENTRIES', 'MAX ENTRIES', 'PRESSURE'],
    maps.map((m) => [m.name, m.type, m.entries === undefined ? NONE : String(m.entries), String(m.maxEntries), m.pressure === undefined ? NONE : `${(m.pressure * 100).toFixed(1)}%`]),
  );
}

export function metricsTable(families: readonly MetricFamilyView[]): string {
  const rows = families.flatMap((f) =>
    f.samples.map((s) => {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`);
      return [s.name, labels.length ? labels.join(' ') : NONE, String(s.value)];
    }),
  );
  return renderTable(['METRIC', 'LABELS', 'VALUE'], rows);
}
