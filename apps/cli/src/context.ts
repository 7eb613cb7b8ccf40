import { AgentClient, DEFAULT_SOCKET } from '@cilia/api-client';
import type { Command } from 'commander';
import { UsageError } from './errors.js';

/** A writable text sink (process.stdout, or a buffer in tests). */
export interface TextSink {
  write(text: string): unknown;
}

/** Where a CLI run reads its environment and writes its output. */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Asks the person at the terminal a yes/no question; absent when there is nobody to ask (stdin not a terminal). */
  readonly confirm?: (question: string) => Promise<boolean>;
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

export { DEFAULT_SOCKET };

/** Directory holding one sub-directory per lab node, each with its own agent socket. */
export const NODE_SOCKET_ROOT = '/var/run/cilia';

/** What the user said about which agent to talk to. */
export interface SocketChoice {
  /** `--socket PATH`. */
  readonly socket?: string;
  /** `--node NAME`. */
  readonly node?: string;
  /** The process environment (for `CILIA_SOCKET`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

// A node name becomes a path segment, so it must not be able to climb or nest directories.
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Picks the agent socket. Explicit flags beat the environment: `--socket`, then `--node`
 * (`/var/run/cilia/<NAME>/cilia.sock`), then `CILIA_SOCKET`, then {@link DEFAULT_SOCKET}.
 */
export function resolveSocketPath(choice: SocketChoice): string {
  if (choice.socket !== undefined) {
    if (choice.socket === '') throw new UsageError('--socket: the path is empty');
    return choice.socket;
  }
  if (choice.node !== undefined) {
    if (!NODE_NAME.test(choice.node)) {
      throw new UsageError(
        `--node: invalid node name '${choice.node}' (letters, digits, '.', '_' and '-', starting with a letter or digit)`,
      );
    }
    return `${NODE_SOCKET_ROOT}/${choice.node}/cilia.sock`;
  }
  const fromEnv = choice.env?.['CILIA_SOCKET'];
  if (fromEnv) return fromEnv;
  return DEFAULT_SOCKET;
}
