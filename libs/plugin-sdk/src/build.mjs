// Cilia's BPF build step: compiles a package's bpf/*.c into BPF ELF objects with the one clang
// invocation every Cilia object is built with, then checks each object's ABI types against the
// reference layout. The SDK's bin (cilia-bpf-build) runs it on the headers the package ships;
// the Cilia repository's tools/bpf-build.mjs runs it on the repository's own bpf/.
// Standard library only: it runs before anything is installed or built.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { compareLayout, objectLayout } from './layout.mjs';

/** The flags of every object: optimised, BTF (-g), BPF ISA v3, warnings on. */
export const CLANG_FLAGS = Object.freeze(['-O2', '-g', '-target', 'bpf', '-mcpu=v3', '-Wall', '-Wno-unused-function']);

const NODE_ARCH = {
  x64: { triple: 'x86_64-linux-gnu', target: 'x86' },
  arm64: { triple: 'aarch64-linux-gnu', target: 'arm64' },
  arm: { triple: 'arm-linux-gnueabihf', target: 'arm' },
  s390x: { triple: 's390x-linux-gnu', target: 's390' },
  ppc64: { triple: 'powerpc64le-linux-gnu', target: 'powerpc' },
  riscv64: { triple: 'riscv64-linux-gnu', target: 'riscv' },
};

/**
 * asm/types.h and friends live in the multiarch include directory on Debian; clang -target bpf
 * does not search it on its own.
 * @returns {string[]}
 */
function archFlags() {
  const arch = NODE_ARCH[/** @type {keyof typeof NODE_ARCH} */ (process.arch)];
  if (!arch) return [];
  const flags = [`-D__TARGET_ARCH_${arch.target}`];
  const dir = `/usr/include/${arch.triple}`;
  if (existsSync(dir)) flags.push('-idirafter', dir);
  return flags;
}

/**
 * clang's arguments for one object. `headerRoot` holds `include/cilia/*.h` (the ABI:
 * `#include "cilia/ctx.h"`) and `lib/*.h` (the datapath's logic: `#include "lib/slots.h"`).
 * @param {string} source
 * @param {string} object
 * @param {string} headerRoot
 * @returns {string[]}
 */
export function clangArgs(source, object, headerRoot) {
  return [...CLANG_FLAGS, '-I', join(headerRoot, 'include'), '-I', headerRoot, ...archFlags(), '-c', source, '-o', object];
}

/**
 * What to suggest for a header clang could not find.
 * @type {[RegExp, string][]}
 */
const MISSING_HEADER_HINTS = [
  [/'bpf\/bpf_(helpers|endian|tracing)\.h' file not found/, "libbpf's headers are missing: install libbpf-dev (Debian/Ubuntu) or libbpf-devel (Fedora)"],
  [/'(asm\/\w+|linux\/\w+)\.h' file not found/, "the kernel's UAPI headers are missing: install linux-libc-dev (Debian/Ubuntu) or kernel-headers (Fedora)"],
];

/**
 * Compiles one source into `object`, written beside it first and renamed, so that concurrent
 * builds (parallel test workers) never see half an object. With `layout`, the object's
 * `cilia_*` types must match it, or no object is left behind.
 * @param {string} source
 * @param {string} object
 * @param {{ headerRoot: string, layout?: { types: import('./layout.mjs').AbiLayout, name: string } }} options
 * @returns {Promise<{ source: string, object?: string, ok: boolean, message?: string, warnings?: string }>}
 */
export function compileObject(source, object, { headerRoot, layout }) {
  const tmp = `${object}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  const clang = process.env.CLANG || 'clang';
  return new Promise((resolvePromise) => {
    let stderr = '';
    const child = spawn(clang, clangArgs(source, tmp, headerRoot), { stdio: ['ignore', 'inherit', 'pipe'] });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (err) => {
      const message =
        /** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT'
          ? `clang not found (${process.env.CLANG ? `CLANG=${clang}` : 'looked for `clang` on PATH; set CLANG to use another'}): install clang to build BPF objects (Debian/Ubuntu: apt-get install clang llvm libbpf-dev)`
          : `cannot run ${clang}: ${err.message}`;
      resolvePromise({ source, ok: false, message });
    });
    child.on('close', (code) => {
      if (code !== 0) {
        rmSync(tmp, { force: true });
        const hints = MISSING_HEADER_HINTS.filter(([re]) => re.test(stderr)).map(([, hint]) => `hint: ${hint}`);
        resolvePromise({ source, ok: false, message: [stderr.trim() || `clang exited with ${code}`, ...hints].join('\n') });
        return;
      }
      if (layout) {
        let problems;
        try {
          problems = compareLayout(objectLayout(readFileSync(tmp), object), layout.types);
        } catch (err) {
          problems = [/** @type {Error} */ (err).message];
        }
        if (problems.length > 0) {
          rmSync(tmp, { force: true });
          resolvePromise({
            source,
            ok: false,
            message:
              `its BTF does not match ${layout.name}'s layout of the Cilia ABI:\n${problems.map((p) => `  ${p}`).join('\n')}\n` +
              `(a stale or edited copy of a Cilia header? include them as "cilia/…" and "lib/…" from the SDK, never copies)`,
          });
          return;
        }
      }
      renameSync(tmp, object);
      resolvePromise({ source, object, ok: true, warnings: stderr });
    });
  });
}

/**
 * @typedef {object} BuildOptions
 * @property {string} program  name in messages (`cilia-bpf-build`)
 * @property {string} headerRoot  directory with include/cilia and lib
 * @property {{ types: import('./layout.mjs').AbiLayout, name: string }} [layout]  the reference to check objects against; none: no check
 * @property {boolean} [packageDirRequired]  refuse to default the package directory to the current one
 */

/**
 * The command line: `[packageDir] [--src <dir>] [--out <dir>] [--only <a,b>]`. Sources default
 * to `<packageDir>/bpf/*.c`, objects to `<packageDir>/dist/bpf/<name>.o`; relative paths
 * resolve against the current directory. Returns the exit code: 0 built (or nothing to
 * build), 1 a source failed, 2 bad usage.
 * @param {string[]} argv
 * @param {BuildOptions} options
 * @returns {Promise<number>}
 */
export async function runBuild(argv, options) {
  const { program } = options;
  const usage = `usage: ${program} ${options.packageDirRequired ? '<packageDir>' : '[packageDir]'} [--src <dir>] [--out <dir>] [--only <name,…>]`;
  /** @type {{ packageDir?: string, src?: string, out?: string, only?: string }} */
  const opts = {};
  const fail = (/** @type {string} */ message) => {
    console.error(`${program}: ${message}`);
    return 2;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    if (arg === '-h' || arg === '--help') {
      console.log(usage);
      return 0;
    }
    if (arg === '--src' || arg === '--out' || arg === '--only') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) return fail(`${arg} needs a value\n${usage}`);
      opts[/** @type {'src' | 'out' | 'only'} */ (arg.slice(2))] = value;
    } else if (arg.startsWith('--')) {
      return fail(`unknown option ${arg}\n${usage}`);
    } else if (opts.packageDir === undefined) {
      opts.packageDir = arg;
    } else {
      return fail(`unexpected argument ${arg}\n${usage}`);
    }
  }
  if (opts.packageDir === undefined) {
    if (options.packageDirRequired) return fail(usage);
    opts.packageDir = '.';
  }
  const packageDir = resolve(opts.packageDir);
  if (!existsSync(packageDir) || !statSync(packageDir).isDirectory()) return fail(`package directory ${packageDir} does not exist`);
  const srcDir = opts.src ? resolve(opts.src) : join(packageDir, 'bpf');
  const outDir = opts.out ? resolve(opts.out) : join(packageDir, 'dist', 'bpf');

  if (!existsSync(srcDir)) {
    console.log(`${program}: no BPF sources in ${relative(process.cwd(), srcDir) || '.'}, nothing to do`);
    return 0;
  }
  let sources = readdirSync(srcDir)
    .filter((f) => f.endsWith('.c'))
    .sort()
    .map((f) => join(srcDir, f));
  if (opts.only) {
    const wanted = new Set(opts.only.split(',').map((n) => n.replace(/\.c$/, '')));
    sources = sources.filter((s) => wanted.has(basename(s, '.c')));
    const found = new Set(sources.map((s) => basename(s, '.c')));
    const missing = [...wanted].filter((n) => !found.has(n));
    if (missing.length) return fail(`--only: no ${missing.map((n) => `${n}.c`).join(', ')} in ${srcDir}`);
  }
  if (sources.length === 0) {
    console.log(`${program}: no .c files in ${srcDir}, nothing to do`);
    return 0;
  }
  mkdirSync(outDir, { recursive: true });

  /** @type {Awaited<ReturnType<typeof compileObject>>[]} */
  const results = [];
  const queue = [...sources];
  const compileOptions = { headerRoot: options.headerRoot, ...(options.layout ? { layout: options.layout } : {}) };
  const workers = Array.from({ length: Math.min(availableParallelism(), queue.length) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      results.push(await compileObject(next, join(outDir, `${basename(next, '.c')}.o`), compileOptions));
    }
  });
  await Promise.all(workers);

  for (const r of results) if (r.ok && r.warnings) process.stderr.write(r.warnings);
  const failed = results.filter((r) => !r.ok);
  for (const r of failed) console.error(`${program}: ${relative(process.cwd(), r.source)} failed:\n${r.message}`);
  const built = results.length - failed.length;
  const checked = options.layout ? `, ABI layout checked against ${options.layout.name}` : '';
  console.log(`${program}: ${built}/${results.length} object(s) → ${relative(process.cwd(), outDir) || '.'}${checked}`);
  return failed.length ? 1 : 0;
}
