import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where runtimes look for CNI plugins by default. */
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

/** What {@link installLauncher} writes. */
export interface InstallOptions {
  /** CNI bin directory to write into. */
  readonly dir: string;
  /** File name; runtimes exec the network config's `type`, so it must match. Default `cilia-cni`. */
  readonly name?: string;
  /** `file:` URL of the plugin's main module (dist/main.js). */
  readonly entry: string;
  /** Node executable the launcher runs; default the current one. */
  readonly node?: string;
}

/**
 * Writes an executable launcher into a CNI bin directory. It names node by absolute path
 * (runtimes exec plugins with a minimal environment, possibly without node on PATH) and
 * imports the plugin from where it is installed. Replaced atomically: a runtime never execs half a file.
 */
export async function installLauncher(options: InstallOptions): Promise<string> {
  const name = options.name ?? 'cilia-cni';
  if (name.includes('/') || name === '' || name === '.' || name === '..') throw new Error(`--name must be a plain file name, got ${JSON.stringify(name)}`);
  const target = join(options.dir, name);
  const node = options.node ?? process.execPath;
  const script = [
    `#!${node}`,
    `// Written by \`cilia-cni install\`: runs the cilia-cni CNI plugin from ${fileURLToPath(options.entry)}.`,
    `import(${JSON.stringify(options.entry)});`,
    '',
  ].join('\n');
  await mkdir(options.dir, { recursive: true });
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, script, { mode: 0o755 });
  await chmod(temp, 0o755);
  await rename(temp, target);
  return target;
}
