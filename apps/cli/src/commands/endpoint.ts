import type { Endpoint, EndpointDetail, RealizedEndpointPolicy } from '@cilia/api-client';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderFields, renderTable } from '../table.js';

/** `cilia endpoint ...`: the agent's endpoints (`/v1/endpoints`). */
export function registerEndpointCommands(program: Command, ctx: CommandContext): void {
  const endpoint = program.command('endpoint').alias('ep').description("list, inspect, create and delete the agent's endpoints").helpCommand(false);
  endpoint
    .command('list')
    .alias('ls')
    .description('list every endpoint with its id, name, address, interface, identity and state')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const endpoints = await ctx.client(command).endpoints.list();
      ctx.io.stdout.write(render(opts.output, endpoints, endpointListTable));
    });
  endpoint
    .command('get')
    .description('show one endpoint')
    .argument('<id>', 'endpoint id (a positive integer)')
    .addOption(outputOption())
    .action(async (id: string, opts: { output: OutputFormat }, command: Command) => {
      if (!/^\d{1,9}$/.test(id)) throw new UsageError(`endpoint id must be a positive integer, got ${JSON.stringify(id)}`);
      const ep = await ctx.client(command).endpoints.get(Number(id));
      ctx.io.stdout.write(render(opts.output, ep, endpointFields));
    });
  endpoint
    .command('create')
    .description('create an endpoint in a new network namespace, as a Pod file would')
    .requiredOption('--name <name>', 'endpoint (pod) name')
    .addOption(new Option('--namespace <namespace>', 'namespace').default('default'))
    .addOption(new Option('--labels <k=v,...>', 'labels, comma-separated key=value pairs').default(''))
    .addOption(outputOption())
    .action(async (opts: { name: string; namespace: string; labels: string; output: OutputFormat }, command: Command) => {
      const ep = await ctx.client(command).endpoints.create({ name: opts.name, namespace: opts.namespace, labels: parseLabels(opts.labels) });
      ctx.io.stdout.write(render(opts.output, ep, endpointFields));
    });
  endpoint
    .command('delete')
    .alias('rm')
    .description('delete an endpoint (its links, netns if the agent made it, map entries and lease)')
    .argument('<id>', 'endpoint id (a positive integer)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      if (!/^\d{1,9}$/.test(id)) throw new UsageError(`endpoint id must be a positive integer, got ${JSON.stringify(id)}`);
      await ctx.client(command).endpoints.delete(Number(id));
      ctx.io.stdout.write(`endpoint ${id} deleted\n`);
    });
}

/** `k=v,k2=v2` → labels; an entry without `=` or with an empty key is a usage error. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of text.split(',').filter((s) => s.trim() !== '')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq).trim();
    if (eq < 0 || key === '') throw new UsageError(`--labels: "${item}" is not key=value`);
    labels[key] = item.slice(eq + 1).trim();
  }
  return labels;
}

/** The people-facing rendering of `GET /v1/endpoints`. */
export function endpointListTable(endpoints: readonly Endpoint[]): string {
  if (endpoints.length === 0) return 'No endpoints.\n';
  return renderTable(
    ['ID', 'NAMESPACE', 'NAME', 'IPV4', 'INTERFACE', 'IDENTITY', 'STATE', 'LABELS'],
    endpoints.map((e) => [String(e.id), e.namespace, e.name, e.ipv4 ?? '', e.hostInterface, String(e.identity), e.state, labelsCell(e.labels)]),
  );
}

/** The people-facing rendering of `GET /v1/endpoints/:id`, with its realized policy map when the agent sends one. */
export function endpointFields(e: EndpointDetail): string {
  const fields = basicEndpointFields(e);
  return e.policy ? fields + '\n' + policyMapText(e.policy) : fields;
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

/** Enforcement, fail-closed reason and a DIRECTION IDENTITY PROTOCOL PORT(S) VERDICT table. */
export function policyMapText(policy: RealizedEndpointPolicy): string {
  const head = renderFields([
    ['Policy enforcement', `ingress ${policy.enforcement.ingress}, egress ${policy.enforcement.egress}`],
    ['Policy map revision', String(policy.revision)],
    ...(policy.failClosed ? ([['Fail closed', policy.failClosed]] as const) : []),
  ]);
  if (policy.entries.length === 0) return `${head}Policy map: no entries\n`;
  const order = (d: string) => (d === 'ingress' ? 0 : 1);
  const entries = [...policy.entries].sort((a, b) => order(a.direction) - order(b.direction) || a.identity - b.identity || a.protocol - b.protocol || a.port - b.port);
  const rows = entries.map((x) => [
    x.direction,
    x.identity === 0 ? 'any' : String(x.identity),
    PROTOCOL_NAMES[x.protocol] ?? String(x.protocol),
    x.port === 0 ? 'any' : x.endPort > x.port ? `${x.port}-${x.endPort}` : String(x.port),
    x.proxyPort ? `${x.verdict} (proxy ${x.proxyPort})` : x.verdict,
  ]);
  return `${head}Policy map:\n${renderTable(['DIRECTION', 'IDENTITY', 'PROTOCOL', 'PORT(S)', 'VERDICT'], rows)}`;
}

function basicEndpointFields(e: Endpoint): string {
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
