import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where runtimes look for CNI plugins by default. */
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

/** What {@link installLauncher} writes. */
export interface InstallOptions {
  /** CNI bin directory to write into. */
  readonly dir: string;
  /** File name; runtimes exec the network config's `type`, so it must match. Default `cilia-cni`. */
  readonly name?: string;
  /** Path of the plugin's CommonJS bundle (dist/cilia-cni.cjs). */
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
  if (!existsSync(options.entry)) throw new Error(`${options.entry} does not exist: build @cilia/cni first (npx nx build @cilia/cni)`);
  const target = join(options.dir, name);
  const node = options.node ?? process.execPath;
  const script = [
    `#!${node}`,
    `// Written by \`cilia-cni install\`: runs the cilia-cni CNI plugin from ${options.entry}.`,
    // CommonJS normally; an ES module scope (a package.json with "type": "module" above the bin
    // directory) has no require, so import the same file there.
    `typeof require === 'function' ? require(${JSON.stringify(options.entry)}) : import(${JSON.stringify(pathToFileURL(options.entry).href)});`,
    '',
  ].join('\n');
  await mkdir(options.dir, { recursive: true });
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, script, { mode: 0o755 });
  await chmod(temp, 0o755);
  await rename(temp, target);
  return target;
}
