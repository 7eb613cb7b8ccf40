import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

/** The package directory (apps/cni). */
export const PKG_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Builds the real executables — the committed bin shim over dist/main.js, and the CommonJS
 * dist/cilia-cni.cjs that installed launchers load — bundled from the sources the way tsup
 * bundles them, into a private directory under the package's node_modules (so pino and
 * @cilia/netlink resolve as they do for dist/). Returns the shim's path.
 */
export async function buildPlugin(): Promise<{ bin: string; dir: string }> {
  await mkdir(join(PKG_DIR, 'node_modules/.cache'), { recursive: true });
  const dir = await mkdtemp(join(PKG_DIR, 'node_modules/.cache/cilia-cni-test-'));
  const common: BuildOptions = { bundle: true, platform: 'node', target: 'node20', packages: 'external', conditions: ['@cilia/source'], logLevel: 'silent' };
  await build({ ...common, entryPoints: [join(PKG_DIR, 'src/main.ts')], outfile: join(dir, 'dist/main.js'), format: 'esm' });
  await build({ ...common, entryPoints: [join(PKG_DIR, 'src/launch.ts')], outfile: join(dir, 'dist/cilia-cni.cjs'), format: 'cjs' });
  await mkdir(join(dir, 'bin'));
  const bin = join(dir, 'bin/cilia-cni.js');
  await copyFile(join(PKG_DIR, 'bin/cilia-cni.js'), bin);
  return { bin, dir };
}

/** One invocation as a runtime makes it. */
export interface Invocation {
  readonly command?: string;
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifName?: string;
  readonly args?: string;
  /** The network config: an object is serialised; a string is sent as is. */
  readonly config?: unknown;
  /** Extra or overriding environment (a value of `undefined` removes the variable). */
  readonly env?: Record<string, string | undefined>;
}

/** What the plugin did. */
export interface InvocationResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  readonly json: Record<string, unknown> | undefined;
}

/**
 * Runs `bin` the way a container runtime does: the executable itself, a minimal environment
 * (PATH and the CNI_* variables), the config on stdin, stdout and the exit code read back.
 */
export async function invoke(bin: string, inv: Invocation): Promise<InvocationResult> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', CNI_PATH: '/opt/cni/bin' };
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) env[k] = v;
  };
  set('CNI_COMMAND', inv.command);
  set('CNI_CONTAINERID', inv.containerId);
  set('CNI_NETNS', inv.netns);
  set('CNI_IFNAME', inv.ifName);
  set('CNI_ARGS', inv.args);
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(inv.config === undefined ? '' : typeof inv.config === 'string' ? inv.config : JSON.stringify(inv.config));
  const [code] = (await once(child, 'close')) as [number | null];
  let json: Record<string, unknown> | undefined;
  try {
    json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}
