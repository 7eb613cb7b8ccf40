// Test support: compile BPF C through tools/bpf-build.mjs, load it with a throwaway pin
// root, and clean everything up afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBpffs } from '../features.js';
import { BpfObject, type OpenOptions } from '../object.js';

function findUp(start: string, relative: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The monorepo root (where tools/bpf-build.mjs lives). */
export function workspaceRoot(): string {
  const script = findUp(dirname(fileURLToPath(import.meta.url)), 'tools/bpf-build.mjs');
  if (!script) throw new Error('tools/bpf-build.mjs not found above @cilia/bpf: testing helpers need the Cilia workspace');
  return resolve(dirname(script), '..');
}

/**
 * Compiles `<srcDir>/<name>.c` (default dir: the workspace's bpf/tests) with the workspace's
 * BPF build and returns the object's path. A compile error throws with clang's message.
 * A plugin's test passes its own sources: `compileBpf('lb', { srcDir: new URL('../bpf', import.meta.url) })`.
 */
export function compileBpf(name: string, options: { srcDir?: string | URL; outDir?: string } = {}): string {
  const root = workspaceRoot();
  const srcDir =
    options.srcDir instanceof URL ? fileURLToPath(options.srcDir) : (options.srcDir ?? join(root, 'bpf', 'tests'));
  const outDir = options.outDir ?? join(tmpdir(), `cilia-bpf-objects-${process.getuid?.() ?? 0}`);
  mkdirSync(outDir, { recursive: true });
  try {
    execFileSync(process.execPath, [join(root, 'tools', 'bpf-build.mjs'), root, '--src', srcDir, '--out', outDir, '--only', name], {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    throw new Error(`compiling ${name}.c failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
  return join(outDir, `${name}.o`);
}

let counter = 0;

/** A fresh, uniquely named pin root on bpffs; remove it with `removePinRoot`. */
export function makePinRoot(tag = 'test'): string {
  ensureBpffs('/sys/fs/bpf');
  const path = `/sys/fs/bpf/cilia-${tag}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  mkdirSync(path, { recursive: true });
  return path;
}

/** Removes a pin root and every pin below it. */
export function removePinRoot(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/** An object loaded for a test with its own pin root; `dispose()` closes and unpins. */
export interface LoadedTestObject {
  readonly object: BpfObject;
  readonly pinRoot: string;
  dispose(): void;
}

/** Compiles bpf/tests/<name>.c, opens it with a throwaway pin root and loads it. */
export function loadTestObject(
  name: string,
  options: Omit<OpenOptions, 'pinRoot'> & { srcDir?: string | URL } = {},
): LoadedTestObject {
  const path = compileBpf(name, { srcDir: options.srcDir });
  const pinRoot = makePinRoot(name);
  let object: BpfObject | undefined;
  try {
    object = BpfObject.open(path, { ...options, pinRoot });
    object.load();
  } catch (err) {
    object?.close();
    removePinRoot(pinRoot);
    throw err;
  }
  const loaded = object;
  return {
    object: loaded,
    pinRoot,
    dispose() {
      loaded.close();
      removePinRoot(pinRoot);
    },
  };
}
