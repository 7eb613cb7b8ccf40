import { readFile } from 'node:fs/promises';
import {
  AgentApiError,
  PolicyWaitTimeoutError,
  waitForPolicyRevision,
  type Endpoint,
  type Labels,
  type PolicyDeleteResponse,
  type PolicyImportResponse,
  type PolicyListResponse,
  type PolicyTraceProtocol,
  type PolicyTraceResponse,
} from '@cilia/api-client';
import { Option, type Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import type { CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { NONE, renderTable } from '../table.js';

const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace';

/** A document of an import file, and where it came from (for error messages). */
interface SourcedDocument {
  readonly document: unknown;
  /** e.g. `document 2` or `document 1, items[3]`. */
  readonly where: string;
}

/** `cilia policy ...`: the agent's network policies (`/v1/policy`). */
export function registerPolicyCommands(program: Command, ctx: CommandContext): void {
  const policy = program.command('policy').description('import, list, delete and trace network policies; wait for endpoints to realize a revision').helpCommand(false);
  policy
    .command('import')
    .description('import CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy documents (YAML, several per file, or JSON; a `kind: List` is unpacked); prints the new revision')
    .requiredOption('-f, --file <file>', 'file to read, or - for standard input')
    .addOption(outputOption())
    .action(async (opts: { file: string; output: OutputFormat }, command: Command) => {
      const text = opts.file === '-' ? await readStdin() : await readFile(opts.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${opts.file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
      const label = opts.file === '-' ? '<stdin>' : opts.file;
      const sourced = policyDocuments(text, label);
      let answer: PolicyImportResponse;
      try {
        answer = await ctx.client(command).policy.import(sourced.map((s) => s.document));
      } catch (err) {
        throw explainRefusal(err, sourced, label);
      }
      ctx.io.stdout.write(render(opts.output, { revision: answer.revision }, (a) => `Revision: ${a.revision}\n`));
    });
  policy
    .command('delete')
    .alias('rm')
    .description('delete a policy by name (every kind and, without -n, every namespace holding that name), or every policy with --all')
    .argument('[name]', 'policy name')
    .addOption(new Option('-n, --namespace <namespace>', 'only the policy in this namespace'))
    .addOption(new Option('--kind <kind>', 'only this kind').choices(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']))
    .option('--all', 'delete every policy')
    .addOption(outputOption())
    .action(async (name: string | undefined, opts: { namespace?: string; kind?: string; all?: boolean; output: OutputFormat }, command: Command) => {
      if (opts.all && (name !== undefined || opts.namespace !== undefined || opts.kind !== undefined)) throw new UsageError('--all deletes every policy; give no name, --namespace or --kind with it');
      if (!opts.all && name === undefined) throw new UsageError('give a policy name, or --all');
      const selector = opts.all ? { all: true as const } : { name: name!, ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.kind ? { kind: opts.kind } : {}) };
      const answer = await ctx.client(command).policy.delete(selector);
      ctx.io.stdout.write(render(opts.output, answer, deleteText));
    });
  policy
    .command('get')
    .alias('list')
    .description('list the imported policies with their revision and what is not enforced as written')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const listing = await ctx.client(command).policy.get();
      ctx.io.stdout.write(render(opts.output, listing, policyTable));
    });
  policy
    .command('trace')
    .description('explain whether traffic from --src to --dst on --dport would pass, and which rules decide it (exit 0 either way)')
    .requiredOption('--src <endpoint|labels>', 'endpoint id, or labels like k8s:app=web,k8s:io.kubernetes.pod.namespace=x (bare keys get k8s:)')
    .requiredOption('--dst <endpoint|labels>', 'endpoint id, or labels')
    .requiredOption('--dport <port[/protocol]>', 'destination port and protocol, e.g. 80/TCP, 53/UDP, 8/ICMP (an ICMP type); protocol default TCP')
    .addOption(outputOption())
    .action(async (opts: { src: string; dst: string; dport: string; output: OutputFormat }, command: Command) => {
      const client = ctx.client(command);
      const { port, protocol } = parseDport(opts.dport);
      const endpointLabels = async (id: number): Promise<Labels> => {
        const endpoint = await client.endpoints.get(id);
        // Policy selects the identity's labels (namespace and namespace labels included), not the bare pod labels.
        const identity = await client.identities.get(endpoint.identity).catch(() => undefined);
        return identity?.labels ?? { ...endpoint.labels, [NAMESPACE_LABEL]: endpoint.namespace };
      };
      const [src, dst] = await Promise.all([peerLabels(opts.src, '--src', endpointLabels), peerLabels(opts.dst, '--dst', endpointLabels)]);
      const result = await client.policy.trace({ src: { labels: src }, dst: { labels: dst }, dport: port, protocol });
      ctx.io.stdout.write(render(opts.output, result, traceText));
    });
  policy
    .command('wait')
    .description('wait until every endpoint has realized policy revision REV')
    .argument('<revision>', 'policy revision (as import and delete print it)')
    .addOption(new Option('--timeout <duration>', 'give up after this long (e.g. 30s, 2m, 500ms)').default('30s'))
    .action(async (rev: string, opts: { timeout: string }, command: Command) => {
      if (!/^\d{1,12}$/.test(rev)) throw new UsageError(`revision must be a non-negative integer, got ${JSON.stringify(rev)}`);
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const client = ctx.client(command);
      await waitForRevision(() => client.endpoints.list(), Number(rev), timeoutMs, (line) => ctx.io.stdout.write(`${line}\n`));
    });
}

/** Reads every document of an import file; a `kind: List` contributes its items. */
export function policyDocuments(text: string, label: string): SourcedDocument[] {
  const out: SourcedDocument[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const n = i + 1;
    const error = doc.errors[0];
    if (error) throw new CliError(`${label}: document ${n} is not valid YAML: ${error.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const list = value as { kind?: unknown; items?: unknown };
    if (typeof list === 'object' && list.kind === 'List') {
      if (!Array.isArray(list.items)) throw new CliError(`${label}: document ${n}: a List needs items (a list of policies)`);
      list.items.forEach((item, j) => out.push({ document: item, where: `document ${n}, items[${j}]` }));
      return;
    }
    out.push({ document: value, where: `document ${n}` });
  });
  if (out.length === 0) throw new CliError(`${label}: no policy documents in it`);
  return out;
}

/** A refused import, the API's `documents[i]` path translated back to the file's document. */
function explainRefusal(err: unknown, sourced: readonly SourcedDocument[], label: string): unknown {
  if (!(err instanceof AgentApiError) || err.status !== 400 || !err.path) return err;
  const m = /^documents\[(\d+)\]\.?(.*)$/.exec(err.path);
  const doc = m ? sourced[Number(m[1])] : undefined;
  if (!m || !doc) return new CliError(`${label}: refused at ${err.path}: ${err.error}`);
  const field = m[2] ? ` ${m[2]}` : '';
  return new CliError(`${label}: ${doc.where} (${describeDocument(doc.document)})${field}: ${err.error}; nothing was imported`);
}

function describeDocument(document: unknown): string {
  const d = document as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  const kind = typeof d?.kind === 'string' ? d.kind : 'unknown kind';
  const name = typeof d?.metadata?.name === 'string' ? d.metadata.name : '<no name>';
  return typeof d?.metadata?.namespace === 'string' ? `${kind} ${d.metadata.namespace}/${name}` : `${kind} ${name}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function deleteText(answer: PolicyDeleteResponse): string {
  const lines = answer.deleted.map((p) => `Deleted ${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}`);
  return [...lines, `Revision: ${answer.revision}`].join('\n') + '\n';
}

/** The people-facing rendering of `GET /v1/policy`: one row per policy (its rules merged). */
export function policyTable(listing: PolicyListResponse): string {
  const head = `Revision: ${listing.revision}   Enforcement: ${listing.enforcement}\n\n`;
  if (listing.rules.length === 0) return `${head}No policies.\n`;
  const rows = new Map<string, { kind: string; namespace: string; name: string; revision: number; notes: Set<string> }>();
  for (const r of listing.rules) {
    const key = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
    const row = rows.get(key) ?? { kind: r.kind, namespace: r.namespace ?? '', name: r.name, revision: r.revision, notes: new Set<string>() };
    row.revision = Math.max(row.revision, r.revision);
    for (const note of r.notes) row.notes.add(note);
    rows.set(key, row);
  }
  return (
    head +
    renderTable(
      ['KIND', 'NAMESPACE', 'NAME', 'REVISION', 'NOTES'],
      [...rows.values()].map((r) => [r.kind, r.namespace || NONE, r.name, String(r.revision), [...r.notes].join('; ') || NONE]),
    )
  );
}

/** `80`, `80/TCP`, `53/udp`, `8/ICMP`; the protocol defaults to TCP. */
export function parseDport(text: string): { port: number; protocol: PolicyTraceProtocol } {
  const m = /^(\d{1,5})(?:\/([A-Za-z0-9]+))?$/.exec(text.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--dport: expected PORT[/PROTOCOL] like 80/TCP, got ${JSON.stringify(text)}`);
  const wanted = (m[2] ?? 'TCP').toUpperCase();
  const protocol = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPV6', 'ANY'].includes(wanted) ? ((wanted === 'ICMPV6' ? 'ICMPv6' : wanted) as PolicyTraceProtocol) : undefined;
  if (!protocol) throw new UsageError(`--dport: protocol must be TCP, UDP, SCTP, ICMP, ICMPv6 or ANY, got ${JSON.stringify(m[2])}`);
  return { port, protocol };
}

/**
 * An endpoint id (its identity's labels are looked up) or a label list `k8s:app=web,io.kubernetes.pod.namespace=x`;
 * keys without a source get `k8s:`, a key without `=` has the empty value (like `reserved:world`).
 */
export async function peerLabels(text: string, flag: string, endpointLabels: (id: number) => Promise<Labels>): Promise<Labels> {
  if (/^\d{1,9}$/.test(text)) return endpointLabels(Number(text));
  const labels: Record<string, string> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    if (key === '' || key.endsWith(':')) throw new UsageError(`${flag}: "${item}" has no label key`);
    labels[key.includes(':') ? key : `k8s:${key}`] = eq < 0 ? '' : item.slice(eq + 1).trim();
  }
  if (Object.keys(labels).length === 0) throw new UsageError(`${flag}: expected an endpoint id or labels like k8s:app=web`);
  return labels;
}

function traceText(result: PolicyTraceResponse): string {
  const lines = [`Verdict: ${result.verdict}`];
  for (const [title, d] of [
    ['Egress (from --src)', result.egress],
    ['Ingress (to --dst)', result.ingress],
  ] as const) {
    if (!d) continue;
    const deciders = d.deniedBy.length ? `, denied by ${d.deniedBy.join(', ')}` : d.allowedBy.length ? `, allowed by ${d.allowedBy.join(', ')}` : '';
    lines.push('', `${title}: ${d.enforced ? `enforced, ${d.verdict}${deciders}` : 'not enforced'}`);
    for (const line of d.lines) lines.push(`  ${line}`);
  }
  return lines.join('\n') + '\n';
}

/** `30s`, `2m`, `500ms`, `1h`, or plain seconds → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: expected a duration like 30s, 2m or 500ms, got ${JSON.stringify(text)}`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * scale);
}

/**
 * Polls the endpoints until every one reports `policyRevision ≥ revision`, printing progress
 * whenever the count changes; on timeout, fails naming the endpoints still behind.
 */
export async function waitForRevision(list: () => Promise<readonly Endpoint[]>, revision: number, timeoutMs: number, say: (line: string) => void): Promise<void> {
  try {
    await waitForPolicyRevision(list, revision, { timeoutMs, onProgress: (p) => say(`${p.realized}/${p.total} endpoints at revision ≥ ${revision}`) });
  } catch (err) {
    throw err instanceof PolicyWaitTimeoutError ? new CliError(err.message) : err;
  }
}
