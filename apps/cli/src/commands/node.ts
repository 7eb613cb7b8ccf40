import type { NodeListItem } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { formatDuration, listCell, NONE, renderTable } from '../table.js';

/** `cilia node ...`: the cluster's nodes as the agent sees them (`/v1/nodes`). */
export function registerNodeCommands(program: Command, ctx: CommandContext): void {
  const node = program.command('node').description('list the nodes registered in the KvStore').helpCommand(false);
  node
    .command('list')
    .alias('ls')
    .description('list every node the agent knows: addresses, pod CIDRs, tunnel endpoint, age')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const nodes = await ctx.client(command).nodes.list();
      ctx.io.stdout.write(render(opts.output, nodes, (n) => nodeListTable(n, Date.now())));
    });
}

/** The people-facing rendering of `GET /v1/nodes`; `now` in ms, for the AGE column. */
export function nodeListTable(nodes: readonly NodeListItem[], now: number): string {
  if (nodes.length === 0) return 'No nodes.\n';
  return renderTable(
    ['NAME', 'IPV4', 'POD-CIDRS', 'TUNNEL-ENDPOINT', 'AGE', 'LOCAL'],
    nodes.map((n) => {
      const since = n.registeredAt ? Date.parse(n.registeredAt) : NaN;
      return [
        n.name,
        n.ipv4 ?? NONE,
        listCell(n.podCidrs),
        n.tunnelEndpoint ?? NONE,
        Number.isNaN(since) ? NONE : formatDuration(Math.max(0, Math.floor((now - since) / 1000))),
        n.local ? 'yes' : 'no',
      ];
    }),
  );
}
