import type { Command } from 'commander';
import { AgentClient } from './client.js';
import { resolveSocketPath } from './socket.js';

/** A writable text sink (process.stdout, or a buffer in tests). */
export interface TextSink {
  write(text: string): unknown;
}

/** Where a CLI run reads its environment and writes its output. */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** What every command action gets: the I/O of this run and a client for the chosen agent. */
export interface CommandContext {
  readonly io: CliIo;
  /** A client for the socket chosen by the global flags of `command` and the environment. */
  client(command: Command): AgentClient;
}

/** Builds the {@link CommandContext} of one run. */
export function createContext(io: CliIo): CommandContext {
  return {
    io,
    client(command) {
      const { socket, node } = command.optsWithGlobals<{ socket?: string; node?: string }>();
      return new AgentClient({ socketPath: resolveSocketPath({ socket, node, env: io.env }) });
    },
  };
}
