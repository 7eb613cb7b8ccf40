#!/usr/bin/env node
// Runs every benchmark in this directory (outside `npm test`), each printing its figures beside
// a baseline measured in the same run. `npm run bench [-- name-filter]`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2] ?? '';
let failed = 0;
for (const file of readdirSync(dir).sort()) {
  if (!file.endsWith('.mjs') || file === 'run.mjs' || !file.includes(filter)) continue;
  console.log(`\n== ${file}`);
  const r = spawnSync(process.execPath, [`${dir}/${file}`], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
