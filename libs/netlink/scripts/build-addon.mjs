#!/usr/bin/env node
// Builds the native addon with node-gyp against the headers of the Node that runs this
// script. Distribution packages (Debian's nodejs) ship them under <prefix>/include/node, so
// no download is needed; elsewhere node-gyp falls back to its own header cache.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(packageDir, 'package.json'));
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');

const prefix = resolve(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];

// configure + build rather than `rebuild`: rebuild deletes build/ first, which pulls the
// addon from under tests running in parallel; make's incremental build only relinks.
for (const step of [['configure', ...nodedir], ['build', '--jobs', 'max', ...nodedir]]) {
  const result = spawnSync(process.execPath, [nodeGyp, ...step], { cwd: packageDir, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(
      `build-addon: node-gyp ${step[0]} failed; the addon needs g++, python3 and make (no libraries: the addon speaks rtnetlink itself)`,
    );
    process.exit(result.status ?? 1);
  }
}
