import { runCommandLine } from './cli.js';
import { CniError, ErrorCode, toErrorJson } from './errors.js';
import { readStdin, writeStdout } from './io.js';
import { runPlugin, type CniLogger, type PluginOutcome } from './plugin.js';
import { LATEST_VERSION } from './versions.js';

/**
 * The executable: a runtime runs the plugin without arguments; a person runs
 * `cilia-cni install|--help|--version`. `launchTarget` is the file `install` makes the
 * launcher load (the CommonJS bundle, the quickest to start).
 */
export async function main(argv: readonly string[], launchTarget: string): Promise<void> {
  if (argv.length > 0) {
    process.exitCode = await runCommandLine(argv, { stdout: process.stdout, stderr: process.stderr }, launchTarget);
    return;
  }
  let outcome: PluginOutcome;
  try {
    outcome = await runPlugin({ env: process.env, stdin: await readStdin(), log: await debugLogger() });
  } catch (err) {
    const json = toErrorJson(new CniError(ErrorCode.IoFailure, `cannot read the network config from stdin: ${(err as Error).message}`), LATEST_VERSION);
    outcome = { stdout: `${JSON.stringify(json)}\n`, exitCode: 1 };
  }
  // Exit as soon as stdout is written: runtimes wait for the process, not for idle handles.
  writeStdout(outcome.stdout, () => process.exit(outcome.exitCode));
}

// stdout is the result channel, so logs go to stderr, and only when asked for (pino is loaded
// only then: it would be most of the startup time otherwise).
async function debugLogger(): Promise<CniLogger | undefined> {
  if (!process.env['CILIA_CNI_DEBUG']) return undefined;
  const { pino } = await import('pino');
  const logger = pino({ base: { subsys: 'cni', pid: process.pid }, level: 'debug' }, pino.destination({ dest: 2, sync: true }));
  return { debug: (fields, message) => logger.debug(fields, message) };
}
