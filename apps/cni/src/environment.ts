import { CniError, ErrorCode } from './errors.js';
import { COMMANDS, type CniCommand } from './versions.js';

/** The `CNI_*` parameters of one invocation, validated for its command. */
export interface CniEnvironment {
  readonly command: CniCommand;
  /** `CNI_CONTAINERID`; absent for VERSION, STATUS and GC. */
  readonly containerId?: string;
  /** `CNI_NETNS`; required for ADD and CHECK, optional for DEL. */
  readonly netns?: string;
  /** `CNI_IFNAME`; absent for VERSION, STATUS and GC. */
  readonly ifName?: string;
  /** `CNI_ARGS` as key/value pairs (`K8S_POD_NAME`, `K8S_POD_NAMESPACE`, ...). */
  readonly args: Readonly<Record<string, string>>;
  /** `CNI_PATH` split on `:` (unused: this plugin delegates to no other plugin). */
  readonly path: readonly string[];
}

// Which variables each command needs. CNI_PATH is not required: this plugin never execs another.
const REQUIRED: Record<CniCommand, readonly ('CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME')[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

// The specification's container id: alphanumeric first, then alphanumerics, `_`, `.` or `-`.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Reads and validates the `CNI_*` variables; a bad or missing one is error code 4 naming it. */
export function parseEnvironment(env: NodeJS.ProcessEnv): CniEnvironment {
  const command = env['CNI_COMMAND'];
  if (!command) throw invalid('CNI_COMMAND', `is not set (expected one of ${COMMANDS.join(', ')})`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw invalid('CNI_COMMAND', `is ${JSON.stringify(command)}, expected one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  const missing = REQUIRED[cmd].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new CniError(
      ErrorCode.InvalidEnvironment,
      `invalid environment: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required for ${cmd} but not set`,
    );
  }
  const needsAttachment = REQUIRED[cmd].length > 0;
  const containerId = needsAttachment ? env['CNI_CONTAINERID'] : undefined;
  if (containerId !== undefined && !CONTAINER_ID.test(containerId)) {
    throw invalid('CNI_CONTAINERID', `is ${JSON.stringify(containerId)}: it must start with a letter or digit, followed by letters, digits, "_", "." or "-"`);
  }
  const ifName = needsAttachment ? env['CNI_IFNAME'] : undefined;
  if (ifName !== undefined) checkInterfaceName(ifName);
  const netns = needsAttachment && env['CNI_NETNS'] ? env['CNI_NETNS'] : undefined;
  if (netns !== undefined && !netns.startsWith('/')) {
    throw invalid('CNI_NETNS', `is ${JSON.stringify(netns)}: it must be an absolute path to a network namespace`);
  }
  return {
    command: cmd,
    ...(containerId !== undefined ? { containerId } : {}),
    ...(netns !== undefined ? { netns } : {}),
    ...(ifName !== undefined ? { ifName } : {}),
    args: parseCniArgs(env['CNI_ARGS'] ?? ''),
    path: (env['CNI_PATH'] ?? '').split(':').filter(Boolean),
  };
}

/** Parses `CNI_ARGS` (`K=V;K2=V2`); an entry without `=` or with an empty key is error code 4. */
export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid('CNI_ARGS', `has the entry ${JSON.stringify(pair)}; expected KEY=VALUE pairs separated by ";"`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

// Linux interface names: 1–15 bytes, not "." or "..", no "/", ":" or whitespace.
function checkInterfaceName(name: string): void {
  const reason =
    Buffer.byteLength(name) > 15
      ? 'is longer than 15 characters'
      : name === '.' || name === '..'
        ? 'may not be "." or ".."'
        : /[/:\s]/.test(name)
          ? 'may not contain "/", ":" or whitespace'
          : undefined;
  if (reason) throw invalid('CNI_IFNAME', `${JSON.stringify(name)} ${reason}`);
}

function invalid(variable: string, reason: string): CniError {
  return new CniError(ErrorCode.InvalidEnvironment, `invalid environment: ${variable} ${reason}`);
}
