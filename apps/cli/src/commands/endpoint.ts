import type { Endpoint } from '@cilia/core';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderFields, renderTable } from '../table.js';

/** `cilia endpoint ...`: the agent's endpoints (`/v1/endpoints`). */
export function registerEndpointCommands(program: Command, ctx: CommandContext): void {
  const endpoint = program.command('endpoint').alias('ep').description("inspect the agent's endpoints").helpCommand(false);
  endpoint
    .command('list')
    .alias('ls')
    .description('list every endpoint with its id, name, address, interface, identity and state')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const endpoints = await ctx.client(command).get<Endpoint[]>('/v1/endpoints');
      ctx.io.stdout.write(render(opts.output, endpoints, endpointListTable));
    });
  endpoint
    .command('get')
    .description('show one endpoint')
    .argument('<id>', 'endpoint id (a positive integer)')
    .addOption(outputOption())
    .action(async (id: string, opts: { output: OutputFormat }, command: Command) => {
      if (!/^\d{1,9}$/.test(id)) throw new UsageError(`endpoint id must be a positive integer, got ${JSON.stringify(id)}`);
      const ep = await ctx.client(command).get<Endpoint>(`/v1/endpoints/${id}`);
      ctx.io.stdout.write(render(opts.output, ep, endpointFields));
    });
}

/** The people-facing rendering of `GET /v1/endpoints`. */
export function endpointListTable(endpoints: readonly Endpoint[]): string {
  if (endpoints.length === 0) return 'No endpoints.\n';
  return renderTable(
    ['ID', 'NAMESPACE', 'NAME', 'IPV4', 'INTERFACE', 'IDENTITY', 'STATE', 'LABELS'],
    endpoints.map((e) => [String(e.id), e.namespace, e.name, e.ipv4 ?? '', e.hostInterface, String(e.identity), e.state, labelsCell(e.labels)]),
  );
}

/** The people-facing rendering of `GET /v1/endpoints/:id`. */
export function endpointFields(e: Endpoint): string {
  return renderFields([
    ['ID', String(e.id)],
    ['Name', `${e.namespace}/${e.name}`],
    ['State', e.state],
    ['Identity', String(e.identity)],
    ['Policy revision', String(e.policyRevision)],
    ['IPv4', e.ipv4 ?? NONE],
    ['IPv6', e.ipv6 ?? NONE],
    ['Gateway', e.ipv4Gateway ?? NONE],
    ['Netns', e.netns],
    ['Interface', `${e.interfaceName} (${e.mac})`],
    ['Host interface', `${e.hostInterface} (${e.hostMac})`],
    ['Container', e.containerId ?? NONE],
    ['Labels', Object.entries(e.labels).map(([k, v]) => `${k}=${v}`)],
  ]);
}

function labelsCell(labels: Endpoint['labels']): string {
  const entries = Object.entries(labels);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : NONE;
}
