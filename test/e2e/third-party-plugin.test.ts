import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO, runAgent, startAgent } from '../support/agent.js';

const exec = promisify(execFile);
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };

async function run(cmd: string, args: string[], cwd = REPO) {
  try {
    return await exec(cmd, args, { cwd, env, maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `npm pack`s a package directory into `dest`; returns the tarball's path. */
async function pack(packageDir: string, dest: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', packageDir, '--pack-destination', dest, '--json']);
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  return join(dest, info!.filename);
}

/**
 * Installs tarballs into a fresh prefix, as an operator would with `npm install`. The tarballs
 * need no registry; core's own dependencies (zod, inversify, semver) come from npm's cache when
 * it has them, from the registry otherwise.
 */
async function installInto(prefix: string, tarballs: string[]): Promise<void> {
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'package.json'), JSON.stringify({ name: 'cilia-site', private: true }));
  await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', ...tarballs], prefix);
}

const coreVersion = (JSON.parse(readFileSync(join(REPO, 'libs/core/package.json'), 'utf8')) as { version: string }).version;

describe('a third-party plugin installed from an npm tarball', () => {
  // Made in beforeAll, not at import: a filtered run imports this file without running it.
  let tmp = '';
  let site = '';
  let siteIncompatible = '';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cilia-third-party-'));
    const tarballs = join(tmp, 'tarballs');
    site = join(tmp, 'site');
    siteIncompatible = join(tmp, 'site-incompatible');
    // Packing core ships its dist/; a no-op when the bootstrap has built it already.
    await run('npx', ['nx', 'run', '@cilia/core:build', '--outputStyle=static']);
    mkdirSync(tarballs);
    const coreTgz = await pack(join(REPO, 'libs/core'), tarballs);
    const pluginTgz = await pack(join(REPO, 'test/fixtures/third-party-plugin'), tarballs);
    const incompatibleTgz = await pack(join(REPO, 'test/fixtures/third-party-plugin-incompatible'), tarballs);
    await installInto(site, [coreTgz, pluginTgz]);
    await installInto(siteIncompatible, [coreTgz, incompatibleTgz]);
  }, 240_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('packs @cilia/core with its built dist, and nothing from the workspace leaks in', () => {
    const installed = JSON.parse(readFileSync(join(site, 'node_modules/@cilia/core/package.json'), 'utf8'));
    expect(installed.version).toBe(coreVersion);
    expect(existsSync(join(site, 'node_modules/@cilia/core/dist/index.js'))).toBe(true);
    expect(existsSync(join(site, 'node_modules/@cilia/core/src')), 'sources are not published').toBe(false);
    // The agent can only find the plugin through the config file's directory.
    expect(existsSync(join(REPO, 'node_modules/cilia-plugin-hello'))).toBe(false);
  });

  it('is loaded from the prefix the config names, started, and reported with its version', async () => {
    const agent = await startAgent({
      configDir: site,
      config: { plugins: ['cilia-plugin-hello'], hello: { greeting: 'hello from npm' } },
    });
    try {
      const status = await agent.status();
      expect(status.health).toBe('ok');
      expect(status.plugins.find((p) => p.name === 'cilia-plugin-hello')).toMatchObject({
        version: '1.2.3',
        origin: 'configured',
        state: 'started',
        provides: ['cilia-plugin-hello.Greeting'],
      });
      const lines = agent
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toContainEqual(
        expect.objectContaining({
          subsys: 'cilia-plugin-hello',
          msg: 'hello from npm',
          file: join(site, 'node_modules/cilia-plugin-hello/index.js'),
        }),
      );
    } finally {
      expect((await agent.stop()).code).toBe(0);
    }
  });

  it('refuses the variant written for plugin API 2: exit code 2, naming plugin, apiVersion and core version', async () => {
    const config = join(siteIncompatible, 'agent.yaml');
    writeFileSync(
      config,
      stringify({ agent: { apiSocket: join(tmp, 'refused.sock'), stateDir: join(tmp, 'state'), metricsAddress: '' }, plugins: ['cilia-plugin-hello'] }),
    );
    const result = await runAgent(['--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cilia-plugin-hello');
    expect(result.stderr).toContain('apiVersion ^2');
    expect(result.stderr).toContain(`@cilia/core ${coreVersion}`);
    expect(result.stdout + result.stderr).not.toContain('an agent on plugin API 1 must never start this plugin');
    expect(existsSync(join(tmp, 'refused.sock'))).toBe(false);
  });
});
