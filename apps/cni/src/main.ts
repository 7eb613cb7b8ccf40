import { runCommandLine } from './cli.js';
import { CniError, ErrorCode, toErrorJson } from './errors.js';
import { runPlugin, type CniLogger, type PluginOutcome } from './plugin.js';
import { LATEST_VERSION } from './versions.js';

// A runtime runs the plugin without arguments; a person runs `cilia-cni install|--help|--version`.
const argv = process.argv.slice(2);
if (argv.length > 0) {
  process.exitCode = await runCommandLine(argv, { stdout: process.stdout, stderr: process.stderr }, import.meta.url);
} else {
  let outcome: PluginOutcome;
  try {
    outcome = await runPlugin({ env: process.env, stdin: await readStdin(), log: await debugLogger() });
  } catch (err) {
    const json = toErrorJson(new CniError(ErrorCode.IoFailure, `cannot read the network config from stdin: ${(err as Error).message}`), LATEST_VERSION);
    outcome = { stdout: `${JSON.stringify(json)}\n`, exitCode: 1 };
  }
  // Exit as soon as stdout is flushed: runtimes wait for the process, not for idle handles.
  process.stdout.write(outcome.stdout, () => process.exit(outcome.exitCode));
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// stdout is the result channel, so logs go to stderr, and only when asked for (pino is loaded
// only then: it is most of the startup time otherwise).
async function debugLogger(): Promise<CniLogger | undefined> {
  if (!process.env['CILIA_CNI_DEBUG']) return undefined;
  const { pino } = await import('pino');
  const logger = pino({ base: { subsys: 'cni', pid: process.pid }, level: 'debug' }, pino.destination({ dest: 2, sync: true }));
  return { debug: (fields, message) => logger.debug(fields, message) };
}
