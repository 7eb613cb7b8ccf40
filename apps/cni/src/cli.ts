import pkg from '../package.json' with { type: 'json' };
import { DEFAULT_CNI_BIN_DIR, installLauncher } from './install.js';
import { SUPPORTED_VERSIONS } from './versions.js';

const USAGE = `cilia-cni: the Cilia CNI plugin.

Container runtimes run it with CNI_COMMAND and the other CNI_* variables set and the network
config on stdin (see README.md). By hand:

  cilia-cni install [--dir ${DEFAULT_CNI_BIN_DIR}] [--name cilia-cni]
      write an executable launcher named cilia-cni into a CNI bin directory
  cilia-cni --version
  cilia-cni --help
`;

/** Output sinks of the command line. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** The few things `cilia-cni` does when run by a person (with arguments) rather than a runtime. */
export async function runCommandLine(argv: readonly string[], io: CliIo, entry: string): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (command === '--version' || command === '-v') {
    io.stdout.write(`cilia-cni ${pkg.version} (CNI ${SUPPORTED_VERSIONS.join(', ')})\n`);
    return 0;
  }
  if (command !== 'install') {
    io.stderr.write(`cilia-cni: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  let dir = DEFAULT_CNI_BIN_DIR;
  let name: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = rest[i + 1];
    if ((flag === '--dir' || flag === '--name') && value !== undefined && !value.startsWith('--')) {
      if (flag === '--dir') dir = value;
      else name = value;
      i++;
    } else {
      io.stderr.write(`cilia-cni install: ${flag === '--dir' || flag === '--name' ? `${flag} needs a value` : `unknown option ${JSON.stringify(flag)}`}\n`);
      return 2;
    }
  }
  try {
    const path = await installLauncher({ dir, entry, ...(name ? { name } : {}) });
    io.stdout.write(`installed ${path}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`cilia-cni install: ${(err as Error).message}\n`);
    return 1;
  }
}
