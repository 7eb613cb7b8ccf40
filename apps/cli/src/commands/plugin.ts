import type { PluginStatus } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { listCell, renderTable } from '../table.js';

/** `cilia plugin ...`: the agent's plugins. */
export function registerPluginCommands(program: Command, ctx: CommandContext): void {
  const plugin = program.command('plugin').description("inspect the agent's plugins").helpCommand(false);
  plugin
    .command('list')
    .alias('ls')
    .description('list every plugin with its origin, state, the services it provides and requires, and the datapath slots it fills')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const plugins = await ctx.client(command).plugins();
      ctx.io.stdout.write(render(opts.output, plugins, pluginListTable));
    });
}

/** The people-facing rendering of `GET /v1/plugins`. */
export function pluginListTable(plugins: readonly PluginStatus[]): string {
  return renderTable(
    ['NAME', 'VERSION', 'ORIGIN', 'STATE', 'PROVIDES', 'REQUIRES', 'SLOTS'],
    plugins.map((p) => [p.name, p.version, p.origin, p.state, listCell(p.provides), listCell(p.requires), listCell((p.slots ?? []).map((s) => `${s.attach}/${s.slot}`))]),
  );
}
