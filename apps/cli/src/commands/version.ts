import { AgentClientError } from '@cilia/api-client';
import type { Command } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import type { CommandContext } from '../context.js';
import { ExitCode, oneLine, QuietExit } from '../errors.js';
import { outputOption, render, type OutputFormat } from '../output.js';
import { renderFields } from '../table.js';

/** Body of `cilia version -o json`. */
export interface VersionReport {
  readonly client: { readonly version: string };
  /** Absent when the agent could not be reached. */
  readonly agent?: { readonly version: string; readonly apiVersion: string; readonly node: string; readonly kernel?: string };
}

/** `cilia version`: this CLI's version and the agent's (exit 1, after the client's, when no agent answers). */
export function registerVersionCommand(program: Command, ctx: CommandContext): void {
  program
    .command('version')
    .description("print the versions of cilia and of the agent it talks to (its plugin API and the node's kernel)")
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      let report: VersionReport = { client: { version: pkg.version } };
      let unreachable: string | undefined;
      try {
        const s = await ctx.client(command).status();
        report = { ...report, agent: { version: s.version, apiVersion: s.apiVersion, node: s.node, ...(s.bpf ? { kernel: s.bpf.kernel } : {}) } };
      } catch (err) {
        if (!(err instanceof AgentClientError)) throw err;
        unreachable = err.message;
      }
      ctx.io.stdout.write(render(opts.output, report, versionTable));
      if (unreachable) {
        ctx.io.stderr.write(`cilia: ${oneLine(unreachable)}\n`);
        throw new QuietExit(ExitCode.Failure);
      }
    });
}

export function versionTable(r: VersionReport): string {
  const a = r.agent;
  return renderFields([
    ['Client', r.client.version],
    ['Agent', a ? `${a.version} (plugin API ${a.apiVersion}) on node ${a.node}${a.kernel ? `, kernel ${a.kernel}` : ''}` : 'unreachable'],
  ]);
}
