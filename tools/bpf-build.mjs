#!/usr/bin/env node
// Compiles a package's eBPF C sources into BPF ELF objects.
//
//   node tools/bpf-build.mjs <packageDir> [--src <dir>] [--out <dir>] [--only <name>]
//
// Defaults: sources are <packageDir>/bpf/*.c, objects go to <packageDir>/dist/bpf/<name>.o.
// Every object is built with `clang -O2 -g -target bpf` against the repo's headers, so plugins
// share one ABI: `#include "cilia/maps.h"` (the ABI, bpf/include/cilia) and
// `#include "lib/slots.h"` (the logic, bpf/lib), as Cilium writes them. Zero dependencies: it
// runs before anything is built.
// Relative paths resolve against the current directory; the repo root is found from this
// script's own location, so it works from any cwd (npm scripts run it from the package).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = 'usage: node tools/bpf-build.mjs <packageDir> [--src <dir>] [--out <dir>] [--only <name>]';

function parseArgs(argv) {
  const opts = { packageDir: undefined, src: undefined, out: undefined, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (arg === '--src' || arg === '--out' || arg === '--only') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) fail(`${arg} needs a value\n${USAGE}`);
      opts[arg.slice(2)] = value;
    } else if (arg.startsWith('--')) {
      fail(`unknown option ${arg}\n${USAGE}`);
    } else if (opts.packageDir === undefined) {
      opts.packageDir = arg;
    } else {
      fail(`unexpected argument ${arg}\n${USAGE}`);
    }
  }
  if (opts.packageDir === undefined) fail(USAGE);
  return opts;
}

function fail(message) {
  console.error(`bpf-build: ${message}`);
  process.exit(2);
}

// asm/types.h and friends live in the multiarch include dir on Debian; clang -target bpf
// does not search it on its own.
function archFlags() {
  const byNodeArch = {
    x64: { triple: 'x86_64-linux-gnu', target: 'x86' },
    arm64: { triple: 'aarch64-linux-gnu', target: 'arm64' },
    arm: { triple: 'arm-linux-gnueabihf', target: 'arm' },
    s390x: { triple: 's390x-linux-gnu', target: 's390' },
    ppc64: { triple: 'powerpc64le-linux-gnu', target: 'powerpc' },
    riscv64: { triple: 'riscv64-linux-gnu', target: 'riscv' },
  };
  const arch = byNodeArch[process.arch];
  if (!arch) return [];
  const flags = [`-D__TARGET_ARCH_${arch.target}`];
  const dir = `/usr/include/${arch.triple}`;
  if (existsSync(dir)) flags.push('-idirafter', dir);
  return flags;
}

function clangArgs(source, object) {
  return [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-mcpu=v3',
    '-Wall',
    '-Wno-unused-function',
    '-I',
    join(repoRoot, 'bpf', 'include'),
    '-I',
    join(repoRoot, 'bpf'),
    ...archFlags(),
    '-c',
    source,
    '-o',
    object,
  ];
}

function compile(source, outDir) {
  const name = basename(source, '.c');
  const object = join(outDir, `${name}.o`);
  // Write beside the target and rename: concurrent builds (parallel test workers) never see
  // a half-written object.
  const tmp = `${object}.${process.pid}.tmp`;
  const clang = process.env.CLANG ?? 'clang';
  return new Promise((resolvePromise) => {
    let stderr = '';
    const child = spawn(clang, clangArgs(source, tmp), { stdio: ['ignore', 'inherit', 'pipe'] });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (err) => {
      resolvePromise({ source, ok: false, message: `cannot run ${clang}: ${err.message} (install clang)` });
    });
    child.on('close', (code) => {
      if (code === 0) {
        renameSync(tmp, object);
        if (stderr) process.stderr.write(stderr);
        resolvePromise({ source, object, ok: true });
      } else {
        rmSync(tmp, { force: true });
        resolvePromise({ source, ok: false, message: stderr.trim() || `clang exited with ${code}` });
      }
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const packageDir = resolve(opts.packageDir);
  if (!existsSync(packageDir) || !statSync(packageDir).isDirectory()) {
    fail(`package directory ${packageDir} does not exist`);
  }
  const srcDir = opts.src ? resolve(opts.src) : join(packageDir, 'bpf');
  const outDir = opts.out ? resolve(opts.out) : join(packageDir, 'dist', 'bpf');

  if (!existsSync(srcDir)) {
    console.log(`bpf-build: no BPF sources in ${relative(process.cwd(), srcDir) || '.'}, nothing to do`);
    return;
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
    if (missing.length) fail(`--only: no ${missing.map((n) => `${n}.c`).join(', ')} in ${srcDir}`);
  }
  if (sources.length === 0) {
    console.log(`bpf-build: no .c files in ${srcDir}, nothing to do`);
    return;
  }
  mkdirSync(outDir, { recursive: true });

  const results = [];
  const queue = [...sources];
  const workers = Array.from({ length: Math.min(availableParallelism(), queue.length) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) results.push(await compile(next, outDir));
  });
  await Promise.all(workers);

  const failed = results.filter((r) => !r.ok);
  for (const r of failed) console.error(`bpf-build: ${relative(process.cwd(), r.source)} failed:\n${r.message}`);
  const built = results.filter((r) => r.ok).length;
  console.log(`bpf-build: ${built}/${results.length} object(s) → ${relative(process.cwd(), outDir) || '.'}`);
  if (failed.length) process.exit(1);
}

await main();
