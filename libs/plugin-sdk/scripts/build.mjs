#!/usr/bin/env node
// The SDK's build (nx run @cilia/plugin-sdk:build): copies the Cilia headers from the
// repository's bpf/ — their one source — into dist/bpf, and writes dist/layout.json, the
// reference layout of every cilia_* type they define, from the BTF of an anchor object
// compiled with the build step itself.
//
//   node scripts/build.mjs [--bpf <dir>]     (default: the repository's bpf/)

import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileObject } from '../src/build.mjs';
import { anchorSource, objectLayout } from '../src/layout.mjs';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const bpfDir = resolve(args[0] === '--bpf' && args[1] ? args[1] : join(packageDir, '..', '..', 'bpf'));
const { name, version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`${name} build: ${message}`);
  process.exit(1);
}

if (!existsSync(join(bpfDir, 'include', 'cilia'))) fail(`no headers in ${join(bpfDir, 'include', 'cilia')}`);
const headerRoot = join(packageDir, 'dist', 'bpf');
const layoutFile = join(packageDir, 'dist', 'layout.json');
rmSync(headerRoot, { recursive: true, force: true });
rmSync(layoutFile, { force: true });
const headersOnly = (/** @type {string} */ src) => !src.includes('.') || src.endsWith('.h');
cpSync(join(bpfDir, 'include', 'cilia'), join(headerRoot, 'include', 'cilia'), { recursive: true, filter: headersOnly });
cpSync(join(bpfDir, 'lib'), join(headerRoot, 'lib'), { recursive: true, filter: headersOnly });

const { source, expected } = anchorSource(headerRoot);
const work = mkdtempSync(join(tmpdir(), 'cilia-plugin-sdk-'));
try {
  writeFileSync(join(work, 'layout.c'), source);
  const result = await compileObject(join(work, 'layout.c'), join(work, 'layout.o'), { headerRoot });
  if (!result.ok) fail(`the layout anchor does not compile:\n${result.message}`);
  const types = objectLayout(join(work, 'layout.o'));
  const missing = expected.filter((key) => !types[key]);
  if (missing.length) fail(`the anchor object's BTF lacks ${missing.join(', ')}`);
  const sorted = Object.fromEntries(Object.entries(types).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(layoutFile, `${JSON.stringify({ sdk: `${name} ${version}`, types: sorted }, null, 2)}\n`);
  console.log(`${name} build: headers from ${bpfDir} → dist/bpf, ${Object.keys(sorted).length} ABI types → dist/layout.json`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
