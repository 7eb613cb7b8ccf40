import { AgentUnreachableError } from '@cilia/api-client';
import { Option, type Command } from 'commander';
import type { CleanupItem, CleanupReport } from '@cilia/datapath/cleanup';
import type { CommandContext } from '../context.js';
import { CliError, ExitCode, QuietExit } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { renderTable } from '../table.js';

/** The agent's defaults (the standalone preset's `agent.stateDir` and `agent.bpfRoot`). */
export const DEFAULT_STATE_DIR = '/var/run/cilia';
export const DEFAULT_BPF_ROOT = '/sys/fs/bpf/cilia';

interface CleanupFlags {
  output: OutputFormat;
  force?: boolean;
  dryRun?: boolean;
  stateDir: string;
  bpfRoot: string;
}

/**
 * `cilia cleanup`, as `cilium-dbg cleanup`: removes what an agent left on this node (its
 * programs on every device, endpoints' veths and the namespaces it made, pins, state). Works
 * without the agent — it refuses while one serves the socket, and asks first, unless `--force`.
 */
export function registerCleanupCommand(program: Command, ctx: CommandContext): void {
  program
    .command('cleanup')
    .description("remove what an agent left on this node: Cilia's tc/XDP programs on every device, endpoints' veths and network namespaces, pins, state")
    .addOption(outputOption())
    .addOption(new Option('-f, --force', 'do not ask, and clean up even while an agent serves the socket'))
    .addOption(new Option('--dry-run', 'only list what would be removed'))
    .addOption(new Option('--state-dir <dir>', "the agent's agent.stateDir").default(DEFAULT_STATE_DIR))
    .addOption(new Option('--bpf-root <dir>', "the agent's agent.bpfRoot").default(DEFAULT_BPF_ROOT))
    .action(async (opts: CleanupFlags, command: Command) => {
      const client = ctx.client(command);
      if (!opts.force && !opts.dryRun && (await serving(() => client.status()))) {
        throw new CliError(`an agent is serving ${client.socketPath}; stop it first, or pass --force`);
      }
      // Loaded here: the addons behind it are for this command alone.
      const { cleanupNode } = await import('@cilia/datapath/cleanup');
      const target = { stateDir: opts.stateDir, bpfRoot: opts.bpfRoot };
      if (!opts.force && !opts.dryRun) {
        const plan = await cleanupNode({ ...target, dryRun: true });
        if (plan.removed.length === 0) return void ctx.io.stdout.write(render(opts.output, plan, cleanupTable));
        if (!ctx.io.confirm) throw new CliError('cleanup asks before it removes anything, and stdin is not a terminal: pass --force (or --dry-run to see what it would remove)');
        ctx.io.stderr.write(itemsTable(plan.removed));
        if (!(await ctx.io.confirm('Remove all of this?'))) throw new CliError('nothing removed');
      }
      const report = await cleanupNode({ ...target, dryRun: opts.dryRun ?? false });
      ctx.io.stdout.write(render(opts.output, report, opts.dryRun ? (r) => cleanupTable(r, 'Would remove') : cleanupTable));
      if (report.failed.length) {
        for (const f of report.failed) ctx.io.stderr.write(`cilia: could not remove ${f.item.kind} ${f.item.name}: ${f.error}\n`);
        throw new QuietExit(ExitCode.Failure);
      }
    });
}

/** Whether something answers on the socket: an agent, even one answering with an error or too slowly. */
async function serving(status: () => Promise<unknown>): Promise<boolean> {
  try {
    await status();
    return true;
  } catch (err) {
    return !(err instanceof AgentUnreachableError);
  }
}

function itemsTable(items: readonly CleanupItem[]): string {
  return renderTable(['KIND', 'NAME', 'DETAIL'], items.map((i) => [i.kind, i.name, i.detail]));
}

/** The people-facing rendering of a cleanup: what it removed, or that there was nothing. */
export function cleanupTable(report: CleanupReport, title = 'Removed'): string {
  if (report.removed.length === 0 && report.failed.length === 0) return 'Nothing to remove.\n';
  return report.removed.length ? `${title}:\n${itemsTable(report.removed)}` : '';
}
