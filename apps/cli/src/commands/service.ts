import { readFile } from 'node:fs/promises';
import type { LbMapsReport, ServiceChangeResponse, ServiceInfo, ServiceListResponse, ServiceUpsertRequest } from '@cilia/api-client';
import { Option, type Command } from 'commander';
import { parse } from 'yaml';
import type { CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { bpfGroup } from './bpf.js';
import { NONE, renderFields, renderTable } from '../table.js';

interface CreateOptions {
  file?: string;
  frontend?: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP';
  backend: string[];
  algorithm?: 'random' | 'maglev';
  affinity?: string;
  local?: boolean;
  namespace?: string;
  name?: string;
  output: OutputFormat;
}

/** `ADDRESS:PORT[/TCP|UDP]` → its parts; a usage error naming `what` otherwise. */
export function addressPort(text: string, what: string): { address: string; port: number; protocol: 'TCP' | 'UDP' } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(tcp|udp))?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: expected ADDRESS:PORT[/TCP|UDP], got "${text}"`);
  return { address: m[1]!, port: Number(m[2]), protocol: (m[3]?.toUpperCase() ?? 'TCP') as 'TCP' | 'UDP' };
}

/** The request `cilia service create` sends: from a file (-f), or from the flags. */
export async function createRequest(opts: CreateOptions): Promise<ServiceUpsertRequest> {
  if (opts.file !== undefined) {
    if (opts.frontend !== undefined || opts.backend.length > 0) throw new UsageError('give the service either in a file (-f) or with --frontend/--backend, not both');
    const text = await readFile(opts.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read ${opts.file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
    return parse(text) as ServiceUpsertRequest;
  }
  if (opts.frontend === undefined) throw new UsageError('give --frontend ADDRESS:PORT[/TCP|UDP] (or -f FILE)');
  const frontend = addressPort(opts.frontend, '--frontend');
  let affinity: number | undefined;
  if (opts.affinity !== undefined) {
    affinity = Number(opts.affinity);
    if (!Number.isInteger(affinity) || affinity < 0) throw new UsageError(`--affinity: expected seconds (an integer ≥ 0), got "${opts.affinity}"`);
  }
  const backends = opts.backend.flatMap((b) => b.split(',')).filter((b) => b !== '').map((b) => {
    const { address, port } = addressPort(b, '--backend');
    return { address, port };
  });
  return {
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.name ? { name: opts.name } : {}),
    frontend: { ...frontend, type: opts.type },
    backends,
    ...(opts.algorithm ? { algorithm: opts.algorithm } : {}),
    ...(affinity !== undefined ? { sessionAffinitySeconds: affinity } : {}),
    ...(opts.local ? { externalTrafficPolicy: 'Local' as const, internalTrafficPolicy: 'Local' as const } : {}),
  };
}

/** `cilia service ...` (`/v1/services`) and `cilia bpf lb list` (`/v1/lb`). */
export function registerServiceCommands(program: Command, ctx: CommandContext): void {
  const service = program.command('service').description("the load balancer's services: list, get, create and delete (services given through the API)").helpCommand(false);
  service
    .command('list')
    .alias('ls')
    .description('list every frontend with its id, type, owner and backends (one line per backend)')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const report = await ctx.client(command).services.list();
      ctx.io.stdout.write(render(opts.output, report, serviceListTable));
    });
  service
    .command('get')
    .description('show one frontend by id')
    .argument('<id>', 'service id (cilia service list)')
    .addOption(outputOption())
    .action(async (id: string, opts: { output: OutputFormat }, command: Command) => {
      const n = Number(id);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`<id>: expected a service id (a positive integer), got "${id}"`);
      const info = await ctx.client(command).services.get(n);
      ctx.io.stdout.write(render(opts.output, info, serviceDetail));
    });
  service
    .command('create')
    .alias('update')
    .description('add or replace a service by its frontend (kept by the agent across restarts); prints its id')
    .option('-f, --file <file>', 'the service as YAML or JSON (the PUT /v1/services body)')
    .option('--frontend <address:port[/proto]>', 'the frontend, e.g. 10.96.0.10:80/TCP')
    .addOption(new Option('--type <type>', 'frontend type').choices(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP']).default('ClusterIP'))
    .option('--backend <address:port,...>', 'a backend (repeatable, or comma-separated)', (v: string, all: string[]) => [...all, v], [] as string[])
    .addOption(new Option('--algorithm <algorithm>', 'backend selection').choices(['random', 'maglev']))
    .option('--affinity <seconds>', 'ClientIP session affinity for this long')
    .option('--local', 'serve from this node\'s backends only (traffic policies Local)')
    .option('-n, --namespace <namespace>', 'namespace shown with it')
    .option('--name <name>', 'name shown with it')
    .addOption(outputOption())
    .action(async (opts: CreateOptions, command: Command) => {
      const answer = await ctx.client(command).services.upsert(await createRequest(opts));
      ctx.io.stdout.write(render(opts.output, answer, changeText('programmed')));
    });
  service
    .command('delete')
    .alias('rm')
    .description('delete a service given through the API, by its frontend')
    .argument('<frontend>', 'ADDRESS:PORT[/TCP|UDP]')
    .addOption(outputOption())
    .action(async (frontend: string, opts: { output: OutputFormat }, command: Command) => {
      const { address, port, protocol } = addressPort(frontend, '<frontend>');
      const answer = await ctx.client(command).services.delete(`${address}:${port}/${protocol}`);
      ctx.io.stdout.write(render(opts.output, answer, changeText('deleted')));
    });

  bpfGroup(program)
    .command('lb')
    .description("the load balancer's maps")
    .helpCommand(false)
    .command('list')
    .alias('ls')
    .description('list cilia_lb4_services as written: each frontend\'s slot 0 and backend slots, with the backends they name')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const report = await ctx.client(command).lb.maps();
      ctx.io.stdout.write(render(opts.output, report, lbMapsTable));
    });
}

const frontendText = (s: ServiceInfo): string => (s.frontend.port ? `${s.frontend.address}:${s.frontend.port}/${s.frontend.protocol}` : NONE);
const backendText = (b: ServiceInfo['backends'][number]): string => `${b.id} => ${b.address}:${b.port} (${b.state}${b.selectable ? '' : ', no new connections'})`;

/** The people-facing rendering of `GET /v1/services`, as `cilium-dbg service list`. */
export function serviceListTable(report: ServiceListResponse): string {
  const notes = [...report.problems.map((p) => `Refused: ${p}`), ...Object.entries(report.skipped).map(([s, why]) => `Skipped: Service ${s}: ${why}`)];
  const tail = notes.length ? `\n${notes.join('\n')}\n` : '';
  if (report.services.length === 0) return `No services.\n${tail}`;
  const rows = report.services.flatMap((s) => {
    const head = [String(s.id), frontendText(s), s.frontend.type, s.owner];
    return s.backends.length === 0 ? [[...head, NONE]] : s.backends.map((b) => [...head, backendText(b)]);
  });
  return renderTable(['ID', 'FRONTEND', 'SERVICE TYPE', 'OWNER', 'BACKEND'], rows) + tail;
}

/** One frontend, field by field. */
export function serviceDetail(s: ServiceInfo): string {
  return renderFields([
    ['ID', String(s.id)],
    ['Frontend', frontendText(s)],
    ['Type', s.frontend.type],
    ['Owner', s.owner],
    ['Algorithm', s.algorithm ?? NONE],
    ['Session affinity', s.sessionAffinitySeconds ? `ClientIP, ${s.sessionAffinitySeconds}s` : 'None'],
    ['Traffic policy', s.externalTrafficPolicy ? `external ${s.externalTrafficPolicy}, internal ${s.internalTrafficPolicy}` : NONE],
    ['Backends', s.backends.map(backendText)],
  ]);
}

const changeText =
  (what: string) =>
  (a: ServiceChangeResponse): string =>
    `Service ${a.id} ${what}: ${a.frontend.address}:${a.frontend.port}/${a.frontend.protocol}\n`;

/** The people-facing rendering of `GET /v1/lb`: one line per slot of `cilia_lb4_services`. */
export function lbMapsTable(report: LbMapsReport): string {
  if (report.services.length === 0) return 'cilia_lb4_services is empty.\n';
  const backends = new Map(report.backends.map((b) => [b.id, b]));
  const maglev = new Set(report.maglev);
  const rows = report.services.map((e) => {
    if (e.slot === 0) {
      const details = [e.type, e.algorithm + (maglev.has(e.revNatIndex) ? ' (table)' : ''), ...(e.affinityTimeout ? [`affinity ${e.affinityTimeout}s`] : []), ...(e.localOnly ? ['local only'] : [])];
      return [e.frontend, '0', String(e.revNatIndex), `${e.count} backend${e.count === 1 ? '' : 's'}`, details.join(', ')];
    }
    const b = backends.get(e.backendId);
    return [e.frontend, String(e.slot), String(e.revNatIndex), b ? `${e.backendId} => ${b.address}:${b.port}/${b.protocol}` : `${e.backendId} (missing)`, b?.state ?? NONE];
  });
  return renderTable(['SERVICE ADDRESS', 'SLOT', 'REVNAT', 'BACKEND', 'DETAILS'], rows);
}
