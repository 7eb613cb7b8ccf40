import { AgentClientError, type AgentStatus, type PluginStatus } from '@cilia/api-client';
import type { BpfFeatures } from '@cilia/core';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { ExitCode, oneLine, QuietExit } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { formatDuration, listCell, NONE, renderFields, renderTable } from '../table.js';

/** What `cilia status --brief` prints when no agent answers. */
export const UNREACHABLE = 'unreachable';

/** `cilia status`: the agent's health, its plugins and the kernel's BPF features. */
export function registerStatusCommand(program: Command, ctx: CommandContext): void {
  program
    .command('status')
    .description("show the agent's version, uptime, health, plugins and BPF features")
    .addOption(outputOption())
    .addOption(new Option('--brief', 'print the health in one word; exit 0 only when it is ok (for probes and scripts)').conflicts('verbose'))
    .addOption(new Option('--verbose', 'show every component: each plugin with what it provides, requires and fills, and its problems and notes'))
    .action(async (opts: { output: OutputFormat; brief?: boolean; verbose?: boolean }, command: Command) => {
      if (opts.brief) return brief(ctx, command, opts.output);
      const status = await ctx.client(command).status();
      ctx.io.stdout.write(render(opts.output, status, opts.verbose ? verboseStatusTable : statusTable));
    });
}

/**
 * `--brief`: one word on stdout — the agent's health, or {@link UNREACHABLE} (with the reason on
 * stderr) — and exit 0 only for `ok`. With `-o json|yaml`, `{ health, problems }`.
 */
async function brief(ctx: CommandContext, command: Command, output: OutputFormat): Promise<void> {
  let health: string;
  let problems: readonly string[];
  try {
    ({ health, problems } = await ctx.client(command).status());
  } catch (err) {
    if (!(err instanceof AgentClientError)) throw err;
    health = UNREACHABLE;
    problems = [err.message];
    if (output === 'table') ctx.io.stderr.write(`cilia: ${oneLine(err.message)}\n`);
  }
  ctx.io.stdout.write(render(output, { health, problems }, (b) => `${b.health}\n`));
  if (health !== 'ok') throw new QuietExit(ExitCode.Failure);
}

/** The people-facing rendering of `GET /v1/status`. */
export function statusTable(status: AgentStatus): string {
  return statusSections(status, pluginsTable(status.plugins)).join('\n');
}

/**
 * `--verbose`: every component — each plugin with its services, slots, error, and the problems
 * and notes its health reporter gives (joined by the reporter's name), then the agent's own.
 */
export function verboseStatusTable(status: AgentStatus): string {
  const byComponent = (lines: readonly string[] | undefined, name: string) => (lines ?? []).filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
  const rows = status.plugins.map((p) => [
    p.name,
    p.version,
    p.origin,
    p.state,
    listCell(p.provides),
    listCell(p.requires),
    listCell((p.slots ?? []).map((s) => `${s.attach}/${s.slot}`)),
    listCell([...(p.error ? [p.error] : []), ...byComponent(status.problems, p.name)]),
    listCell(byComponent(status.notes, p.name)),
  ]);
  const names = new Set(status.plugins.map((p) => p.name));
  const other = (lines: readonly string[] | undefined) => (lines ?? []).filter((l) => ![...names].some((n) => l.startsWith(`${n}: `)));
  const components = renderTable(['NAME', 'VERSION', 'ORIGIN', 'STATE', 'PROVIDES', 'REQUIRES', 'SLOTS', 'PROBLEMS', 'NOTES'], rows);
  const sections = statusSections({ ...status, problems: other(status.problems), notes: other(status.notes) }, components, 'Components');
  return sections.join('\n');
}

function statusSections(status: AgentStatus, plugins: string, title = 'Plugins'): string[] {
  const header: [string, string | readonly string[]][] = [
    ['Node', status.node],
    ['Version', `${status.version} (plugin API ${status.apiVersion})`],
    ['Uptime', `${formatDuration(status.uptimeSeconds)} (since ${status.startedAt})`],
    ['Health', status.health],
  ];
  if (status.problems.length) header.push(['Problems', status.problems]);
  if (status.notes?.length) header.push(['Notes', status.notes]);
  const sections = [renderFields(header), `${title}:\n` + indent(plugins)];
  if (status.bpf) sections.push('BPF:\n' + indent(bpfFields(status.bpf)));
  return sections;
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
