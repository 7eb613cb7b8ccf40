import type { Identity } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderFields, renderTable } from '../table.js';

/** `cilia identity ...`: the security identities the agent knows (`/v1/identities`). */
export function registerIdentityCommands(program: Command, ctx: CommandContext): void {
  const identity = program.command('identity').alias('id').description('list and inspect security identities (reserved, cluster-wide and local CIDR ones)').helpCommand(false);
  identity
    .command('list')
    .alias('ls')
    .description('list every identity the agent knows with its scope and labels')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const identities = await ctx.client(command).identities.list();
      ctx.io.stdout.write(render(opts.output, identities, identityListTable));
    });
  identity
    .command('get')
    .description('show one identity')
    .argument('<id>', 'numeric identity')
    .addOption(outputOption())
    .action(async (id: string, opts: { output: OutputFormat }, command: Command) => {
      if (!/^\d{1,10}$/.test(id)) throw new UsageError(`identity must be a non-negative integer, got ${JSON.stringify(id)}`);
      const found = await ctx.client(command).identities.get(Number(id));
      ctx.io.stdout.write(render(opts.output, found, identityFields));
    });
}

/** The people-facing rendering of `GET /v1/identities`. */
export function identityListTable(identities: readonly Identity[]): string {
  if (identities.length === 0) return 'No identities.\n';
  return renderTable(
    ['ID', 'SCOPE', 'LABELS'],
    identities.map((i) => [String(i.id), i.scope, labelList(i).join(',') || NONE]),
  );
}

/** The people-facing rendering of `GET /v1/identities/:id`. */
export function identityFields(i: Identity): string {
  return renderFields([
    ['ID', String(i.id)],
    ['Scope', i.scope],
    ['Labels', labelList(i)],
  ]);
}

function labelList(i: Identity): string[] {
  return Object.entries(i.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`));
}
