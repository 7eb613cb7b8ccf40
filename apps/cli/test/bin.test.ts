import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeStaleSocket, makeTempDir, okRoutes, plugins, removeDir, startFixtureAgent, status, type FixtureAgent } from './fixture-agent.js';

// The real executable: the committed bin shim importing ../dist/main.js, bundled from the
// sources the way tsup bundles them (dependencies external). It is built into a private
// directory so a concurrent `nx build` or another test never sees a half-written dist/.
const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
let buildDir: string;
let bin: string;
let dir: string;
let agent: FixtureAgent;

beforeAll(async () => {
  await mkdir(join(pkgDir, 'node_modules/.cache'), { recursive: true });
  // Under the package's node_modules, so commander and yaml resolve as they do for dist/.
  buildDir = await mkdtemp(join(pkgDir, 'node_modules/.cache/cilia-cli-test-'));
  await build({
    entryPoints: [join(pkgDir, 'src/main.ts')],
    outfile: join(buildDir, 'dist/main.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    conditions: ['@cilia/source'],
    logLevel: 'silent',
  });
  await mkdir(join(buildDir, 'bin'));
  bin = join(buildDir, 'bin/cilia.js');
  await copyFile(join(pkgDir, 'bin/cilia.js'), bin);
  dir = await makeTempDir();
  agent = await startFixtureAgent(join(dir, 'cilia.sock'), okRoutes);
});

afterAll(async () => {
  await agent?.close();
  if (dir) await removeDir(dir);
  if (buildDir) await removeDir(buildDir);
});

async function exec(argv: string[], env: Record<string, string> = {}) {
  // Run the shim itself (shebang + exec bit), with a clean environment apart from PATH.
  const child = spawn(bin, argv, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

describe('the cilia executable', () => {
  it('is a committed, executable two-line shim over dist/main.js', async () => {
    const shim = join(pkgDir, 'bin/cilia.js');
    expect((await stat(shim)).mode & 0o111).toBe(0o111);
    expect((await readFile(shim, 'utf8')).trimEnd().split('\n')).toEqual(['#!/usr/bin/env node', "import '../dist/main.js';"]);
    const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ cilia: './bin/cilia.js' });
  });

  it('prints status JSON from the socket in CILIA_SOCKET and exits 0', async () => {
    const r = await exec(['status', '-o', 'json'], { CILIA_SOCKET: agent.socketPath });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual(status);
  });

  it('lets --socket win over CILIA_SOCKET', async () => {
    const r = await exec(['plugin', 'list', '--socket', agent.socketPath], { CILIA_SOCKET: join(dir, 'absent.sock') });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['NAME', 'VERSION', 'ORIGIN', 'STATE', 'PROVIDES', 'REQUIRES', 'SLOTS']);
    expect(rows.map((l) => l.split(/\s{2,}/)[0])).toEqual(plugins.map((p) => p.name));
  });

  it('exits 1 with one line naming the socket when the agent is not running', async () => {
    const stale = join(dir, 'stale.sock');
    await makeStaleSocket(stale);
    const r = await exec(['config', 'view'], { CILIA_SOCKET: stale });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `cilia: cannot reach the agent at ${stale}: connection refused (is cilia-agent running?)\n`,
    });
  });

  it('exits 2 with one line on a bad -o value', async () => {
    const r = await exec(['status', '-o', 'toml', '--socket', agent.socketPath]);
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr: "cilia: option '-o, --output <format>' argument 'toml' is invalid. Allowed choices are table, json, yaml.\n",
    });
  });

  it('exits 0 quietly when the reader closes the pipe early', async () => {
    // Far more than a pipe buffer holds, so the CLI is still writing when `head` goes away.
    const many = Array.from({ length: 20_000 }, (_, i) => ({ ...plugins[1]!, name: `plugin-${i}` }));
    const big = await startFixtureAgent(join(dir, 'big.sock'), { '/v1/plugins': { body: many } });
    try {
      const child = spawn('/bin/bash', ['--norc', '--noprofile', '-c', 'set -o pipefail; "$0" plugin list -o json --socket "$1" | head -c 1 >/dev/null', bin, big.socketPath], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const [code] = (await once(child, 'close')) as [number | null];
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(big.requests).toEqual(['/v1/plugins']);
    } finally {
      await big.close();
    }
  });
});
