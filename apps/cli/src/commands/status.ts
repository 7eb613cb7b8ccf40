import type { AgentStatus, PluginStatus } from '@cilia/api-client';
import type { BpfFeatures } from '@cilia/core';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { formatDuration, NONE, renderFields, renderTable } from '../table.js';

/** `cilia status`: the agent's health, its plugins and the kernel's BPF features. */
export function registerStatusCommand(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description("show the agent's version, uptime, health, plugins and BPF features")
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const status = await ctx.client(command).status();
      ctx.io.stdout.write(render(opts.output, status, statusTable));
    });
}

/** The people-facing rendering of `GET /v1/status`. */
export function statusTable(status: AgentStatus): string {
  const header: [string, string | readonly string[]][] = [
    ['Node', status.node],
    ['Version', `${status.version} (plugin API ${status.apiVersion})`],
    ['Uptime', `${formatDuration(status.uptimeSeconds)} (since ${status.startedAt})`],
    ['Health', status.health],
  ];
  if (status.problems.length) header.push(['Problems', status.problems]);
  if (status.notes?.length) header.push(['Notes', status.notes]);
  const sections = [renderFields(header), 'Plugins:\n' + indent(pluginsTable(status.plugins))];
  if (status.bpf) sections.push('BPF:\n' + indent(bpfFields(status.bpf)));
  return sections.join('\n');
}

function pluginsTable(plugins: readonly PluginStatus[]): string {
  if (!plugins.length) return `${NONE}\n`;
  // The ERROR column only appears when something failed, to keep the usual case narrow.
  const withError = plugins.some((p) => p.error);
  const headers = ['NAME', 'VERSION', 'ORIGIN', 'STATE', ...(withError ? ['ERROR'] : [])];
  const rows = plugins.map((p) => [p.name, p.version, p.origin, p.state, ...(withError ? [p.error ?? ''] : [])]);
  return renderTable(headers, rows);
}

function bpfFields(bpf: BpfFeatures): string {
  return renderFields([
    ['Kernel', bpf.kernel],
    ['bpffs', bpf.bpffs.mounted ? `mounted at ${bpf.bpffs.path}` : `not mounted (expected at ${bpf.bpffs.path})`],
    ['BTF', yesNo(bpf.btf)],
    ['JIT', yesNo(bpf.jit)],
    ['Supported', bpf.supported.length ? bpf.supported.join(', ') : NONE],
    ['Missing', bpf.missing.length ? bpf.missing.join(', ') : NONE],
  ]);
}

function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
}
