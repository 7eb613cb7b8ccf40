import type { IpCacheEntry } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderTable } from '../table.js';

/** `cilia ipcache ...`: IP/CIDR → identity, tunnel endpoint and node (`/v1/ipcache`). */
export function registerIpCacheCommands(program: Command, ctx: CommandContext): void {
  const ipcache = program.command('ipcache').description('inspect the ipcache: which identity and node each IP or prefix belongs to').helpCommand(false);
  ipcache
    .command('list')
    .alias('ls')
    .description('list every ipcache entry: local endpoints, other nodes\' endpoints (from the KvStore) and generated ones')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const entries = await ctx.client(command).ipcache.list();
      ctx.io.stdout.write(render(opts.output, entries, ipcacheListTable));
    });
}

/** The people-facing rendering of `GET /v1/ipcache`. */
export function ipcacheListTable(entries: readonly IpCacheEntry[]): string {
  if (entries.length === 0) return 'No ipcache entries.\n';
  return renderTable(
    ['PREFIX', 'IDENTITY', 'TUNNEL-ENDPOINT', 'NODE', 'SOURCE'],
    entries.map((e) => [e.prefix, String(e.identity), e.tunnelEndpoint ?? NONE, e.node ?? NONE, e.source]),
  );
}
