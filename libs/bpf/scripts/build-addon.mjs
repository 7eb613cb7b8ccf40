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
const args = [nodeGyp, 'rebuild', '--jobs', 'max'];
if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);

const result = spawnSync(process.execPath, args, { cwd: packageDir, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('build-addon: node-gyp failed; the addon needs g++, make, python3 and libbpf-dev, libelf-dev, zlib1g-dev');
  process.exit(result.status ?? 1);
}
