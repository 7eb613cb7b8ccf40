import { AgentClientError } from '@cilia/api-client';
import { Command, CommanderError, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { registerBpfBandwidthCommands } from './commands/bpf.js';
import { registerInspectionCommands } from './commands/bpf-maps.js';
import { registerCleanupCommand } from './commands/cleanup.js';
import { registerCompletionCommand } from './commands/completion.js';
import { registerConfigCommands } from './commands/config.js';
import { registerEndpointCommands } from './commands/endpoint.js';
import { registerFlowCommands } from './commands/flows.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerIpCacheCommands } from './commands/ipcache.js';
import { registerNodeCommands } from './commands/node.js';
import { registerPluginCommands } from './commands/plugin.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerServiceCommands } from './commands/service.js';
import { registerStatusCommand } from './commands/status.js';
import { registerVersionCommand } from './commands/version.js';
import { createContext, DEFAULT_SOCKET, NODE_SOCKET_ROOT, type CliIo } from './context.js';
import { CliError, ExitCode, oneLine, QuietExit } from './errors.js';

const HELP_FOOTER = `
Agent socket:
  --socket PATH, else --node NAME (${NODE_SOCKET_ROOT}/NAME/cilia.sock, one agent per lab node),
  else $CILIA_SOCKET, else ${DEFAULT_SOCKET}.

Exit codes:
  0  success
  1  the agent could not be reached, or answered with an error
  2  usage error (unknown command or flag, bad flag value)

Examples:
  cilia status
  cilia plugin list -o json
  cilia --node node-2 config view
  CILIA_SOCKET=/tmp/cilia.sock cilia status -o yaml
`;

/**
 * Builds the `cilia` command tree for one run. Commander is told to throw instead of
 * exiting and to keep its own error text to itself, so {@link run} owns the exit code and
 * prints exactly one line per error.
 */
export function buildProgram(io: CliIo, errors: { text: string }): Command {
  const program = new Command('cilia')
    .description('Inspect a running Cilia agent over its API socket.')
    .version(pkg.version, '-V, --version', 'print the version of cilia')
    .addOption(new Option('--socket <path>', 'path of the agent API socket'))
    .addOption(new Option('--node <name>', 'talk to the lab node NAME (its socket under /var/run/cilia/NAME/)'))
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      // Help requested implicitly (a group without its subcommand) lands here; run() decides.
      writeErr: (s) => {
        errors.text += s;
      },
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', HELP_FOOTER);

  const ctx = createContext(io);
  registerStatusCommand(program, ctx);
  registerPluginCommands(program, ctx);
  registerConfigCommands(program, ctx);
  registerEndpointCommands(program, ctx);
  registerIdentityCommands(program, ctx);
  registerIpCacheCommands(program, ctx);
  registerNodeCommands(program, ctx);
  registerPolicyCommands(program, ctx);
  registerBpfBandwidthCommands(program, ctx);
  registerServiceCommands(program, ctx);
  registerFlowCommands(program, ctx);
  registerInspectionCommands(program, ctx);
  registerCleanupCommand(program, ctx);
  registerVersionCommand(program, ctx);
  registerCompletionCommand(program, ctx);
  return program;
}

/**
 * Runs `cilia` with `argv` (the arguments after the program name) and returns the exit
 * code; output goes to `io`. Never throws and never exits the process.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const captured = { text: '' };
  const program = buildProgram(io, captured);
  if (argv.length === 0) {
    program.outputHelp();
    return ExitCode.Ok;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.Ok;
  } catch (err) {
    return report(err, io, captured.text);
  }
}

function report(err: unknown, io: CliIo, commanderText: string): number {
  if (err instanceof CommanderError) {
    switch (err.code) {
      case 'commander.helpDisplayed':
      case 'commander.version':
        return ExitCode.Ok;
      case 'commander.help':
        // A command group without its subcommand: show its help, as kubectl does.
        io.stdout.write(commanderText);
        return ExitCode.Ok;
      default:
        io.stderr.write(`cilia: ${oneLine(err.message.replace(/^error: /, ''))}\n`);
        return ExitCode.Usage;
    }
  }
  if (err instanceof QuietExit) return err.exitCode;
  // Ours, or the agent's: not reachable, too slow, or an API error (its message and the field at fault).
  if (err instanceof CliError || err instanceof AgentClientError) {
    io.stderr.write(`cilia: ${oneLine(err.message)}\n`);
    return err instanceof CliError ? err.exitCode : ExitCode.Failure;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`cilia: internal error: ${oneLine(message)}\n`);
  return ExitCode.Failure;
}
