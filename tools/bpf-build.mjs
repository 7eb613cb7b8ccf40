#!/usr/bin/env node
// Compiles a package's eBPF C sources into BPF ELF objects: Cilia's BPF build step — the one
// clang invocation, in @cilia/plugin-sdk — run on this repository's own headers.
//
//   node tools/bpf-build.mjs <packageDir> [--src <dir>] [--out <dir>] [--only <name>]
//
// Defaults: sources are <packageDir>/bpf/*.c, objects go to <packageDir>/dist/bpf/<name>.o.
// Every object is built with `clang -O2 -g -target bpf -mcpu=v3` against bpf/include
// (`#include "cilia/maps.h"`, the ABI) and bpf (`#include "lib/slots.h"`, the logic), the
// headers' one source, so plugins share one ABI. The SDK's cilia-bpf-build runs the same step on
// its built copy of them and checks each object's layout against that copy; here the objects
// are built from the source itself, so there is nothing to check them against and no build has
// to run first. Plain Node and the SDK's plain-JS module: it runs before anything is built.
// Relative paths resolve against the current directory; the repo root is found from this
// script's own location, so it works from any cwd (npm scripts run it from the package).

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBuild } from '@cilia/plugin-sdk/build';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

process.exitCode = await runBuild(process.argv.slice(2), { program: 'bpf-build', headerRoot: join(repoRoot, 'bpf'), packageDirRequired: true });
