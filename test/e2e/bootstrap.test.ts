import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '../..');
const BOOTSTRAP = join(REPO, 'tools/bootstrap.mjs');
const env = { ...process.env, NX_DAEMON: 'false', NX_TUI: 'false', NX_NO_CLOUD: 'true' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(cmd: string, args: string[], cwd = REPO, extraEnv: Record<string, string> = {}): Promise<Result> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      // Nx colours its output under CI=true, even into a pipe.
      resolve({ code, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr), seconds: (performance.now() - t0) / 1000 });
    });
  });
}

const stripAnsi = (text: string) => text.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');

/** The bootstrap's per-step report lines: "bootstrap: <step> <status> <detail> (<s>s)". */
function steps(stderr: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of stderr.matchAll(/^bootstrap: (\S+)\s+(up-to-date|done|needed|skipped)\s/gm)) found.set(m[1]!, m[2]!);
  return found;
}

const mtime = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : undefined);
const size = (path: string) => (existsSync(path) ? statSync(path).size : undefined);

describe('tools/bootstrap.mjs on a machine that is already set up', () => {
  it('--check finds nothing to do and changes nothing', async () => {
    const res = await run(process.execPath, [BOOTSTRAP, '--check']);
    // `npm test` runs the bootstrap before vitest, so here every step must already be done.
    // If this fails, the bootstrap's own report below says which step still has work.
    expect(res.stderr, 'run `node tools/bootstrap.mjs` first; this test checks the no-op path').toContain(
      'bootstrap: check: nothing to do',
    );
    expect(res.code).toBe(0);
    expect(Object.fromEntries(steps(res.stderr))).toEqual({
      node: 'up-to-date',
      'debian-packages': 'up-to-date',
      'debian-unpacked': 'up-to-date',
      bpffs: 'up-to-date',
      'npm-ci': 'up-to-date',
      build: 'skipped',
    });
  });

  it('a second run exits 0 without apt or npm ci, and the Nx build has nothing stale to fail on', async () => {
    const stamp = join(REPO, 'node_modules/.cilia-bootstrap.json');
    const hiddenLock = join(REPO, 'node_modules/.package-lock.json');
    const before = { stamp: mtime(stamp), hiddenLock: mtime(hiddenLock), dpkgLog: size('/var/log/dpkg.log') };
    expect(before.stamp, 'the bootstrap records its npm ci in node_modules').toBeDefined();
    // Never let this test be the one that runs apt or npm ci (in a shared checkout, say).
    const pre = await run(process.execPath, [BOOTSTRAP, '--check']);
    expect(pre.code, `the bootstrap still has work to do; run it first:\n${pre.stderr}`).toBe(0);

    const res = await run(process.execPath, [BOOTSTRAP]);
    console.log(`bootstrap second run: ${res.seconds.toFixed(2)} s\n${res.stderr}`);

    expect(res.code, res.stderr).toBe(0);
    const status = steps(res.stderr);
    expect(status.get('node')).toBe('up-to-date');
    expect(status.get('debian-packages')).toBe('up-to-date');
    expect(status.get('debian-unpacked')).toBe('up-to-date');
    expect(status.get('bpffs')).toBe('up-to-date');
    expect(status.get('npm-ci')).toBe('up-to-date');
    // Tests that run before this one may touch project files, so the build may legitimately
    // redo a task; it must still succeed.
    expect(['up-to-date', 'done']).toContain(status.get('build'));
    expect(res.stderr).toMatch(/^bootstrap: ready in \d+\.\d+s$/m);
    expect(res.stderr).not.toMatch(/installing Debian packages|running npm ci/);
    // Evidence beyond its own words: npm ci rewrites both files, dpkg appends to its log.
    expect(mtime(stamp)).toBe(before.stamp);
    expect(mtime(hiddenLock)).toBe(before.hiddenLock);
    expect(size('/var/log/dpkg.log')).toBe(before.dpkgLog);
  }, 120_000);
});

describe('tools/bootstrap.mjs deciding when to run npm ci', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A throwaway workspace root holding only the bootstrap and a lockfile. */
  function fakeRoot(lock: string): string {
    dir = mkdtempSync(join(tmpdir(), `cilia-bootstrap-${randomBytes(3).toString('hex')}-`));
    mkdirSync(join(dir, 'tools'));
    copyFileSync(BOOTSTRAP, join(dir, 'tools/bootstrap.mjs'));
    writeFileSync(join(dir, 'package-lock.json'), lock);
    return dir;
  }

  const check = (root: string) => run(process.execPath, [join(root, 'tools/bootstrap.mjs'), '--check', '--no-build'], root);

  it('wants npm ci when node_modules is missing, has no stamp, or the lockfile changed; not when the stamp matches', async () => {
    const lock = '{"lockfileVersion":3,"packages":{}}\n';
    const root = fakeRoot(lock);

    let res = await check(root);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/npm-ci\s+needed\s+would run npm ci: node_modules missing/);

    mkdirSync(join(root, 'node_modules'));
    res = await check(root);
    expect(res.stderr).toMatch(/npm-ci\s+needed\s+would run npm ci: no record of a previous npm ci/);

    const stamp = (text: string) =>
      JSON.stringify({ lockSha256: createHash('sha256').update(text).digest('hex'), nodeAbi: process.versions.modules });
    writeFileSync(join(root, 'node_modules/.cilia-bootstrap.json'), stamp('{"lockfileVersion":3,"packages":{"x":{}}}\n'));
    res = await check(root);
    expect(res.stderr).toMatch(/npm-ci\s+needed\s+would run npm ci: package-lock.json changed/);

    writeFileSync(join(root, 'node_modules/.cilia-bootstrap.json'), stamp(lock));
    res = await check(root);
    expect(steps(res.stderr).get('npm-ci')).toBe('up-to-date');
    // --check never installs: the fake root still has an empty node_modules.
    expect(readdirSync(join(root, 'node_modules'))).toEqual(['.cilia-bootstrap.json']);
  });

  /** A fake root whose npm-ci record matches its lockfile, so only the system steps can have work. */
  function readyRoot(): string {
    const lock = '{"lockfileVersion":3,"packages":{}}\n';
    const root = fakeRoot(lock);
    mkdirSync(join(root, 'node_modules'));
    const lockSha256 = createHash('sha256').update(lock).digest('hex');
    writeFileSync(join(root, 'node_modules/.cilia-bootstrap.json'), JSON.stringify({ lockSha256, nodeAbi: process.versions.modules }));
    return root;
  }

  it('names the missing Debian packages, and refuses to install them without root', async () => {
    const root = readyRoot();
    // A stand-in dpkg-query: tshark was removed (its config files remain) and dpkg has never
    // heard of etcd-server (no line, exit 1), as the real one reports them.
    mkdirSync(join(root, 'bin'));
    writeFileSync(
      join(root, 'bin/dpkg-query'),
      [
        '#!/bin/sh',
        'shift 2',
        'for p in "$@"; do',
        '  case "$p" in',
        '    tshark) printf "%s\\tconfig-files\\n" "$p" ;;',
        '    etcd-server) echo "dpkg-query: no packages found matching $p" >&2 ;;',
        '    *) printf "%s\\tinstalled\\n" "$p" ;;',
        '  esac',
        'done',
        'exit 1',
      ].join('\n'),
      { mode: 0o755 },
    );
    for (const path of [root, join(root, 'tools'), join(root, 'bin')]) chmodSync(path, 0o755);
    const path = { PATH: `${join(root, 'bin')}:${process.env.PATH}` };
    const script = join(root, 'tools/bootstrap.mjs');

    const planned = await run(process.execPath, [script, '--check', '--no-build'], root, path);
    expect(planned.code).toBe(1);
    expect(planned.stderr).toMatch(/debian-packages\s+needed\s+would install etcd-server tshark \(/);

    const asNobody = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, '--no-build'], root, path);
    expect(asNobody.code).toBe(1);
    expect(asNobody.stderr.trimEnd().split('\n').at(-1)).toBe(
      'bootstrap: debian-packages failed: missing Debian packages: etcd-server tshark ' +
        '(run as root, or: sudo apt-get install etcd-server tshark)',
    );
  });

  it('mounts bpffs at /sys/fs/bpf when there is none (in a private mount namespace)', async () => {
    const root = readyRoot();
    const script = join(root, 'tools/bootstrap.mjs');
    // The namespace dies with the shell, taking its mounts along; the machine's bpffs is untouched.
    const shell = [
      'while grep -q " /sys/fs/bpf bpf " /proc/mounts; do umount /sys/fs/bpf || exit 99; done',
      `"${process.execPath}" "${script}" --no-build`,
      'status=$?',
      'grep " /sys/fs/bpf bpf " /proc/mounts >&2',
      'exit $status',
    ].join('\n');
    const res = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', shell], root);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/bpffs\s+done\s+mounted bpffs at \/sys\/fs\/bpf/);
    expect(res.stderr).toMatch(/^bpf \/sys\/fs\/bpf bpf /m);
    expect(steps(res.stderr).get('npm-ci')).toBe('up-to-date');
  });

  it('refuses an unknown flag with a one-line reason', async () => {
    const res = await run(process.execPath, [BOOTSTRAP, '--frobnicate']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toBe(
      'bootstrap: arguments failed: unknown argument --frobnicate (expected --no-build, --check, --quiet)',
    );
  });
});

describe('nx release (independent versions of libs/*, plugins/* and apps/*)', () => {
  it('a dry run versions, changelogs and packs every publishable package and changes nothing', async () => {
    const projects = ['libs', 'plugins', 'apps'].flatMap((group) =>
      existsSync(join(REPO, group))
        ? readdirSync(join(REPO, group))
            .map((name) => join(REPO, group, name, 'package.json'))
            .filter((path) => existsSync(path))
        : [],
    );
    const manifests = new Map(projects.map((path) => [path, readFileSync(path, 'utf8')]));
    const changelog = (manifest: string) => {
      const path = join(manifest, '../CHANGELOG.md');
      return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    };
    const changelogs = new Map(projects.map((path) => [path, changelog(path)]));
    const names = [...manifests.values()].map((text) => (JSON.parse(text) as { name: string }).name);
    expect(names).toContain('@cilia/core');

    const lockfile = join(REPO, 'package-lock.json');
    const lockBefore = readFileSync(lockfile, 'utf8');

    const res = await run('npx', ['nx', 'release', 'patch', '--dry-run', '--yes']);
    console.log(`nx release --dry-run: ${res.seconds.toFixed(1)} s`);
    const output = res.stdout + res.stderr;
    expect(res.code, output).toBe(0);
    for (const name of names) {
      expect(output, name).toContain(`Running release version for project: ${name}`);
      expect(output, name).toMatch(new RegExp(`name:\\s+${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s`));
    }
    expect(output).toContain('Would publish to');
    expect(output).toContain('NOTE: The "dryRun" flag means no changes were made.');
    // The packages ship their build and their SBOM: @cilia/core's tarball lists dist/index.js and dist/sbom.spdx.json.
    expect(output).toMatch(/dist\/index\.js\b/);
    expect(output).toMatch(/dist\/sbom\.spdx\.json\b/);
    expect(readFileSync(lockfile, 'utf8') === lockBefore, 'package-lock.json untouched').toBe(true);
    for (const [path, text] of manifests) {
      expect(readFileSync(path, 'utf8'), path).toBe(text);
      expect(changelog(path), `${path}: CHANGELOG.md untouched`).toBe(changelogs.get(path));
    }
  }, 180_000);
});

describe('tools/vitest-summary-reporter.mjs (the last line of a CI log)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('ends the run with passed/failed/skipped counts, counting a failing beforeAll as failed', async () => {
    dir = mkdtempSync(join(tmpdir(), `cilia-reporter-${randomBytes(3).toString('hex')}-`));
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(
      join(dir, 'sample.test.mjs'),
      [
        "import { beforeAll, describe, expect, it } from 'vitest';",
        "it('passes', () => expect(1).toBe(1));",
        "it('also passes', () => expect([1]).toHaveLength(1));",
        "it('fails', () => expect(1).toBe(2));",
        "it.skip('is skipped', () => {});",
        "describe('setup fails', () => { beforeAll(() => { throw new Error('boom'); }); it('never runs', () => {}); });",
      ].join('\n'),
    );
    const vitest = join(REPO, 'node_modules/vitest/vitest.mjs');
    const reporter = join(REPO, 'tools/vitest-summary-reporter.mjs');
    const res = await run(process.execPath, [vitest, 'run', '--root', dir, '--reporter=default', `--reporter=${reporter}`], dir);
    expect(res.code).toBe(1);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('Tests: 2 passed, 2 failed, 2 skipped');
    expect(lines.at(-2)).toBe('1 error(s) outside tests counted as failed');
  }, 60_000);
});
