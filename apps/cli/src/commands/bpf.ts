import type { BandwidthLimit, BandwidthReport } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderFields, renderTable } from '../table.js';

/** `cilia bpf`: what the datapath's maps hold, one subcommand group per map. Found or made, so several commands can add to it. */
export function bpfGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === 'bpf') ??
    program.command('bpf').description("read the datapath's BPF maps through the agent").helpCommand(false)
  );
}

/** `cilia bpf bandwidth list`: the endpoints' egress and ingress limits (`/v1/bandwidth`). */
export function registerBpfBandwidthCommands(program: Command, ctx: CommandContext): void {
  const bandwidth = bpfGroup(program).command('bandwidth').description("the bandwidth manager's per-endpoint limits").helpCommand(false);
  bandwidth
    .command('list')
    .alias('ls')
    .description('list each endpoint with a limit: egress (EDT) and ingress rates, drops')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const report = await ctx.client(command).bandwidth.list();
      ctx.io.stdout.write(render(opts.output, report, bandwidthTable));
    });
}

/** A rate in bits per second as people read it: `10M`, `1.5G`, `500k`. */
export function formatBitRate(bitsPerSecond: number): string {
  for (const [suffix, scale] of [['G', 1e9], ['M', 1e6], ['k', 1e3]] as const) {
    if (bitsPerSecond >= scale) return `${Number((bitsPerSecond / scale).toFixed(2))}${suffix}bit/s`;
  }
  return `${bitsPerSecond}bit/s`;
}

const limitCell = (l: BandwidthLimit | undefined): string => (l ? formatBitRate(l.bitsPerSecond) : NONE);

/** The people-facing rendering of `GET /v1/bandwidth`. */
export function bandwidthTable(report: BandwidthReport): string {
  const egress = report.egress.enabled ? `on (EDT, fq on ${report.egress.devices.join(', ')})` : `off: ${report.egress.reason ?? 'disabled'}`;
  const header = renderFields([
    ['Egress', egress],
    ['Ingress', report.ingress.enabled ? 'on (eBPF token bucket)' : 'off'],
    ['BBR', report.bbr ? 'on' : 'off'],
    ...(report.invalid.length ? ([['Refused', report.invalid.map((i) => `${i.pod}: ${i.path}: ${i.reason}`)]] as const) : []),
  ]);
  if (report.endpoints.length === 0) return `${header}No endpoint has a bandwidth limit.\n`;
  const rows = report.endpoints.map((e) => [
    String(e.endpointId),
    e.namespace && e.name ? `${e.namespace}/${e.name}` : NONE,
    limitCell(e.egress),
    limitCell(e.ingress),
    String((e.egress?.drops ?? 0) + (e.ingress?.drops ?? 0)),
  ]);
  return header + renderTable(['ENDPOINT', 'POD', 'EGRESS', 'INGRESS', 'DROPS'], rows);
}
