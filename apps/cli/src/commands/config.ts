import type { ConfigView } from '@cilia/api-client';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { outputOption, render, toYaml, type OutputFormat } from '../output.js';

/** `cilia config ...`: the agent's configuration. */
export function registerConfigCommands(program: Command, ctx: CommandContext): void {
  const config = program.command('config').description("inspect the agent's configuration").helpCommand(false);
  config
    .command('view')
    .description('print the effective configuration (defaults applied) and the files it came from')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }, command: Command) => {
      const view = await ctx.client(command).config();
      ctx.io.stdout.write(render(opts.output, view, configYaml));
    });
}

/**
 * A config is a tree, so the people-facing form is YAML too: the effective config, preceded
 * by comments naming the files it was read from. It stays valid YAML, ready to paste into a file.
 */
export function configYaml(view: ConfigView): string {
  const sources = view.sources.length
    ? view.sources.map((s) => `#   ${s}`).join('\n')
    : '#   (none: embedded defaults)';
  return `# Effective configuration, read from:\n${sources}\n${toYaml(view.config)}`;
}
