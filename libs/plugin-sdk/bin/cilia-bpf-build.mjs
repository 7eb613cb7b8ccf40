#!/usr/bin/env node
// cilia-bpf-build [packageDir] [--src <dir>] [--out <dir>] [--only <name,…>]
//
// Compiles <packageDir>/bpf/*.c (default: the current directory's) into dist/bpf/<name>.o with
// clang -O2 -g -target bpf -mcpu=v3 against the Cilia headers this package ships, and checks
// each object's cilia_* types against the SDK's reference layout.

import { runBuild } from '../src/build.mjs';
import { headerRoot, referenceLayout } from '../src/sdk.mjs';

const program = 'cilia-bpf-build';
let layout;
try {
  layout = referenceLayout();
} catch (err) {
  console.error(`${program}: ${/** @type {Error} */ (err).message}`);
  process.exit(2);
}
process.exitCode = await runBuild(process.argv.slice(2), { program, headerRoot, layout });
