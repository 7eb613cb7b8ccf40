import { parseArgs } from 'node:util';
import { ConfigError, PluginSetError } from '@cilia/core';
import { join } from 'node:path';
import { Agent, AGENT_VERSION, describeApi, prepareAgent } from './agent.js';
import { apiReferenceMarkdown } from './api/openapi.js';
import { defaultPlugins } from './builtin.js';
import { presetDirectory } from './config/document.js';
import { renderConfigReference } from './config/reference.js';

/** Exit codes: 0 clean stop, 1 failure while running, 2 refused input (usage, config, plugin set). */
const EXIT = { ok: 0, failure: 1, refused: 2 } as const;

const USAGE = `usage: cilia-agent --config FILE
       cilia-agent --print-config-reference [--config FILE]
       cilia-agent --print-api-reference [--config FILE]
       cilia-agent --version`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'print-config-reference': { type: 'boolean' },
        'print-api-reference': { type: 'boolean' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`cilia-agent: ${(err as Error).message}\n${USAGE}\n`);
    return EXIT.refused;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (args.version) {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  if (args['print-config-reference'] && !args.config) {
    process.stdout.write(renderConfigReference(defaultPlugins().map((c) => c.definition)));
    return EXIT.ok;
  }
  // The API of the embedded defaults: the standalone preset.
  if (args['print-api-reference'] && !args.config) args.config = join(presetDirectory(), 'standalone.yaml');
  if (!args.config) {
    process.stderr.write(`cilia-agent: --config FILE is required\n${USAGE}\n`);
    return EXIT.refused;
  }

  let prepared;
  try {
    prepared = await prepareAgent(args.config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PluginSetError) {
      process.stderr.write(`cilia-agent: ${err.message}\n`);
      return EXIT.refused;
    }
    throw err;
  }
  if (args['print-config-reference']) {
    process.stdout.write(renderConfigReference(prepared.set.order.map((c) => c.definition)));
    return EXIT.ok;
  }
  if (args['print-api-reference']) {
    process.stdout.write(apiReferenceMarkdown(describeApi(prepared)));
    return EXIT.ok;
  }
  return run(new Agent(prepared));
}

async function run(agent: Agent): Promise<number> {
  let stopping: Promise<boolean> | undefined;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        agent.logger.warn({ signal }, 'second signal: exiting without waiting for plugins to stop');
        process.exit(EXIT.failure);
      }
      agent.logger.info({ signal }, 'stopping');
      stopping = agent.stop();
      stopping.then((clean) => resolve(clean ? EXIT.ok : EXIT.failure));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  try {
    const { socket, metrics } = await agent.start();
    {
      // People start the agent by hand (npm start): tell them where to look.
      process.stderr.write(
        `cilia-agent ${AGENT_VERSION} ready\n  API socket: ${socket}  (try: npx cilia status --socket ${socket})\n` +
          `  metrics:    ${metrics ? `http://${metrics}/metrics` : 'disabled'}\n` +
          `  logs:       JSON on standard output unless agent.logFile is set (pipe through npx pino-pretty to read)\n`,
      );
    }
  } catch (err) {
    agent.logger.fatal({ err: (err as Error).message }, 'agent failed to start');
    process.stderr.write(`cilia-agent: ${(err as Error).message}\n`);
    // A plugin that refused its config at start (what the kernel offers is known only then).
    return refusedAtStart(err) ? EXIT.refused : EXIT.failure;
  }
  return stopped;
}

/** Whether a start failure is a ConfigError somewhere down its chain of causes. */
function refusedAtStart(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) if (e instanceof ConfigError) return true;
  return false;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Plugins may leave handles open; the exit code is decided, so leave.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`cilia-agent: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(EXIT.failure);
  },
);
