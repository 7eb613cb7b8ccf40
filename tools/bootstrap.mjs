#!/usr/bin/env node
// Cilia's zero-dependency bootstrap: `npm start` and `npm test` run it first.
//
// It runs before node_modules exists, so it may use nothing but Node's standard library.
// Every step first checks cheaply whether there is anything to do, so a second run on a
// machine that is already set up costs about as much as one cached `nx run-many -t build`.
//
//   node tools/bootstrap.mjs [--no-build] [--check] [--quiet]
//
//   --no-build  stop after `npm ci` (Debian packages, bpffs and node_modules only)
//   --check     change nothing; report what would be done and exit 1 if anything would be
//   --quiet     print only failures
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Every Debian package the project needs, in one place. The bootstrap installs all of them
 * in one `apt-get install`.
 */
export const DEBIAN_PACKAGES = Object.freeze({
  /** Compile the datapath (C → eBPF) and build the libbpf addon (links -lbpf -lelf -lz). */
  build: [
    'clang',
    'llvm',
    'libbpf-dev',
    'bpftool',
    'make',
    'g++',
    'python3',
    'pkg-config',
    'libelf-dev',
    'zlib1g-dev',
  ],
  /** Set up links, addresses, routes and namespaces in the agent and its tests. */
  runtime: ['iproute2'],
  /**
   * Tests and benchmarks: the etcd KvStore backend, ping across namespaces, throughput, captures,
   * certificates for etcd over TLS, device offloads (segmentation) switched off, the KvStore's
   * syncs traced, Prometheus scraping an agent and promtool checking the alerting rules, headless
   * Chromium drawing the service map, curl for plain HTTP requests inside a namespace.
   */
  test: ['etcd-server', 'iputils-ping', 'iperf3', 'tcpdump', 'tshark', 'openssl', 'ethtool', 'strace', 'prometheus', 'chromium', 'curl'],
});

/**
 * Debian packages unpacked (`dpkg-deb -x`) under {@link UNPACKED_DEBIAN_ROOT}`/<package>` instead
 * of installed, because their files clash with packages these machines may carry already: Debian's
 * kubectl (`kubernetes-client`, the real client the test Kubernetes API server is proven with)
 * ships /usr/bin/kubectl, which Google Cloud SDK's `kubectl` package owns here, and dpkg refuses
 * to overwrite it.
 */
export const UNPACKED_DEBIAN_PACKAGES = Object.freeze({ test: ['kubernetes-client'] });

/** Where {@link UNPACKED_DEBIAN_PACKAGES} go: one directory per package, its files below it. */
export const UNPACKED_DEBIAN_ROOT = '/var/cache/cilia/debian';

/** Every package of {@link DEBIAN_PACKAGES}, flattened. */
export const ALL_DEBIAN_PACKAGES = Object.freeze(Object.values(DEBIAN_PACKAGES).flat());

const MIN_NODE = [20, 19];
const BPFFS = '/sys/fs/bpf';
const STAMP_NAME = '.cilia-bootstrap.json';

/** A failure with a one-line reason; `details` (e.g. a command's output) is printed before it. */
class BootstrapError extends Error {
  constructor(message, details = '') {
    super(message);
    this.details = details;
  }
}

/** Runs a command; output goes to stderr unless quiet, in which case it is kept for the error. */
function run(cmd, args, { cwd, env, quiet }) {
  const res = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 2, 2],
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (res.error) throw new BootstrapError(`${cmd}: ${res.error.message}`);
  return { status: res.status, output: `${res.stdout ?? ''}${res.stderr ?? ''}` };
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    throw new BootstrapError(`Node ${process.versions.node} is too old: Cilia needs Node >= ${MIN_NODE.join('.')}`);
  }
  return { status: 'up-to-date', detail: `node ${process.versions.node}` };
}

/** Packages of `names` that dpkg does not report as installed, asked in one dpkg-query call. */
export function missingDebianPackages(names) {
  const res = spawnSync('dpkg-query', ['-W', '-f=${Package}\\t${db:Status-Status}\\n', ...names], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (res.error) {
    throw new BootstrapError(`dpkg-query not found: the bootstrap needs Debian/Ubuntu (${res.error.message})`);
  }
  // Exit status 1 only means some names are unknown to dpkg; those count as missing.
  const installed = new Set();
  for (const line of res.stdout.split('\n')) {
    const [pkg, status] = line.split('\t');
    if (status === 'installed') installed.add(pkg);
  }
  return names.filter((name) => !installed.has(name));
}

function ensureDebianPackages({ check, quiet }) {
  const missing = missingDebianPackages([...ALL_DEBIAN_PACKAGES]);
  if (missing.length === 0) {
    return { status: 'up-to-date', detail: `${ALL_DEBIAN_PACKAGES.length} packages installed` };
  }
  if (check) return { status: 'needed', detail: `would install ${missing.join(' ')}` };
  if (!isRoot()) {
    throw new BootstrapError(
      `missing Debian packages: ${missing.join(' ')} (run as root, or: sudo apt-get install ${missing.join(' ')})`,
    );
  }
  if (!quiet) process.stderr.write(`bootstrap: installing Debian packages: ${missing.join(' ')}\n`);
  // tshark asks whether non-root users may capture; noninteractive takes the default (no).
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const update = run('apt-get', ['update', '-q'], { env, quiet });
  if (update.status !== 0) throw new BootstrapError(`apt-get update failed (exit ${update.status})`, tail(update.output));
  const install = run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, quiet });
  if (install.status !== 0) {
    throw new BootstrapError(`apt-get install ${missing.join(' ')} failed (exit ${install.status})`, tail(install.output));
  }
  const still = missingDebianPackages(missing);
  if (still.length > 0) throw new BootstrapError(`apt-get reported success but these are not installed: ${still.join(' ')}`);
  return { status: 'done', detail: `installed ${missing.join(' ')}` };
}

/** The version recorded for an unpacked package, or undefined when it is not (completely) there. */
function unpackedVersion(dir) {
  return readStamp(join(dir, '.cilia-unpacked.json'))?.version;
}

function ensureUnpackedDebianPackages({ check, quiet }) {
  const names = Object.values(UNPACKED_DEBIAN_PACKAGES).flat();
  const missing = names.filter((name) => unpackedVersion(join(UNPACKED_DEBIAN_ROOT, name)) === undefined);
  if (missing.length === 0) return { status: 'up-to-date', detail: `${names.join(' ')} in ${UNPACKED_DEBIAN_ROOT}` };
  if (check) return { status: 'needed', detail: `would unpack ${missing.join(' ')} into ${UNPACKED_DEBIAN_ROOT}` };
  if (!isRoot()) throw new BootstrapError(`${missing.join(' ')} not unpacked in ${UNPACKED_DEBIAN_ROOT}, and doing it needs root`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  mkdirSync(UNPACKED_DEBIAN_ROOT, { recursive: true });
  const work = mkdtempSync(join(UNPACKED_DEBIAN_ROOT, '.download-'));
  try {
    // apt's sandbox user fetches into the directory; without this it warns and downloads as root.
    chmodSync(work, 0o777);
    let download = run('apt-get', ['download', '-q', ...missing], { cwd: work, env, quiet: true });
    if (download.status !== 0) {
      // Package lists never fetched (a fresh machine): once more after an update.
      const update = run('apt-get', ['update', '-q'], { env, quiet });
      if (update.status !== 0) throw new BootstrapError(`apt-get update failed (exit ${update.status})`, tail(update.output));
      download = run('apt-get', ['download', '-q', ...missing], { cwd: work, env, quiet: true });
    }
    if (download.status !== 0) throw new BootstrapError(`apt-get download ${missing.join(' ')} failed (exit ${download.status})`, tail(download.output));
    for (const name of missing) {
      const deb = readdirSync(work).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
      if (!deb) throw new BootstrapError(`apt-get download ${name} left no ${name}_*.deb`);
      const dir = join(UNPACKED_DEBIAN_ROOT, name);
      const staging = join(work, `${name}.unpacked`);
      const unpack = run('dpkg-deb', ['-x', join(work, deb), staging], { quiet: true });
      if (unpack.status !== 0) throw new BootstrapError(`dpkg-deb -x ${deb} failed (exit ${unpack.status})`, tail(unpack.output));
      const version = run('dpkg-deb', ['-f', join(work, deb), 'Version'], { quiet: true }).output.trim();
      writeFileSync(join(staging, '.cilia-unpacked.json'), `${JSON.stringify({ package: name, version, at: new Date().toISOString() }, null, 2)}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { status: 'done', detail: `unpacked ${missing.join(' ')} into ${UNPACKED_DEBIAN_ROOT}` };
}

/** Whether /proc/mounts lists a bpf filesystem mounted at `mountPoint`. */
export function isBpffsMounted(mountPoint = BPFFS, mounts = readFileSync('/proc/mounts', 'utf8')) {
  return mounts.split('\n').some((line) => {
    const [, target, fstype] = line.split(' ');
    return target === mountPoint && fstype === 'bpf';
  });
}

function ensureBpffs({ check, quiet }) {
  if (isBpffsMounted()) return { status: 'up-to-date', detail: `${BPFFS} mounted` };
  if (check) return { status: 'needed', detail: `would mount bpffs at ${BPFFS}` };
  if (!isRoot()) throw new BootstrapError(`bpffs is not mounted at ${BPFFS} and mounting it needs root`);
  mkdirSync(BPFFS, { recursive: true });
  const res = run('mount', ['-t', 'bpf', 'bpf', BPFFS], { quiet });
  if (res.status !== 0) throw new BootstrapError(`mount -t bpf bpf ${BPFFS} failed (exit ${res.status})`, tail(res.output));
  return { status: 'done', detail: `mounted bpffs at ${BPFFS}` };
}

/**
 * What `npm ci` was last run for. Kept inside node_modules so that a fresh clone, or a deleted
 * node_modules, always installs. The Node ABI is part of it because native dependencies are
 * built for one ABI.
 */
function wantedStamp(root) {
  const lock = readFileSync(join(root, 'package-lock.json'));
  return { lockSha256: createHash('sha256').update(lock).digest('hex'), nodeAbi: process.versions.modules };
}

function readStamp(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function ensureNodeModules(root, { check, quiet }) {
  const stampPath = join(root, 'node_modules', STAMP_NAME);
  const wanted = wantedStamp(root);
  const stamp = readStamp(stampPath);
  let reason;
  if (!existsSync(join(root, 'node_modules'))) reason = 'node_modules missing';
  else if (!stamp) reason = 'no record of a previous npm ci';
  else if (stamp.lockSha256 !== wanted.lockSha256) reason = 'package-lock.json changed';
  else if (stamp.nodeAbi !== wanted.nodeAbi) reason = `Node ABI changed (${stamp.nodeAbi} → ${wanted.nodeAbi})`;
  if (!reason) return { status: 'up-to-date', detail: 'package-lock.json unchanged' };
  if (check) return { status: 'needed', detail: `would run npm ci: ${reason}` };

  if (!quiet) process.stderr.write(`bootstrap: running npm ci (${reason})\n`);
  const args = ['ci', '--no-audit', '--no-fund'];
  if (quiet) args.push('--loglevel=error');
  const res = run('npm', args, { cwd: root, quiet });
  if (res.status !== 0) throw new BootstrapError(`npm ci failed (exit ${res.status})`, tail(res.output));
  writeFileSync(stampPath, `${JSON.stringify({ ...wanted, at: new Date().toISOString() }, null, 2)}\n`);
  return { status: 'done', detail: `npm ci (${reason})` };
}

/** Extracts "a/b" from Nx's "Cache: a/b hit" summary line, if it printed one. */
export function parseNxCache(output) {
  const m = /Cache:\s+(\d+)\/(\d+) hit/.exec(output);
  return m ? { hit: Number(m[1]), total: Number(m[2]) } : undefined;
}

/** Runs a command to completion, keeping its output; says once if it takes a while. */
function runCaptured(cmd, args, { cwd, env, quiet, label }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const slow = quiet ? undefined : setTimeout(() => process.stderr.write(`bootstrap: ${label} still running…\n`), 5000);
    child.on('error', (err) => {
      clearTimeout(slow);
      reject(new BootstrapError(`${cmd}: ${err.message}`));
    });
    child.on('close', (status) => {
      clearTimeout(slow);
      resolve({ status, output });
    });
  });
}

async function build(root, { check, quiet }) {
  // Nx's own cache decides what is stale: a fully cached run restores outputs and costs ~2 s,
  // and anything cheaper of our own would have to re-derive every target's inputs.
  if (check) return { status: 'skipped', detail: 'left to the Nx cache (--check)' };
  const nx = join(root, 'node_modules', '.bin', 'nx');
  if (!existsSync(nx)) throw new BootstrapError(`${nx} not found: node_modules is incomplete (delete it and rerun)`);
  const res = await runCaptured(nx, ['run-many', '-t', 'build', '--outputStyle=static'], {
    cwd: root,
    env: { NX_DAEMON: 'false', NX_TUI: 'false' },
    quiet,
    label: 'nx run-many -t build',
  });
  // Nx colours its output when CI is set, even into a pipe.
  const plain = stripAnsi(res.output);
  if (res.status !== 0) {
    const failed = [...plain.matchAll(/^\s*- (\S+:build\S*)\s*$/gm)].map((m) => m[1]);
    const what = failed.length ? `: ${failed.join(', ')}` : ` (exit ${res.status})`;
    throw new BootstrapError(`nx build failed${what}`, quiet ? '' : res.output);
  }
  const cache = parseNxCache(plain);
  if (!cache) return { status: 'done', detail: 'nx run-many -t build' };
  if (cache.hit === cache.total) return { status: 'up-to-date', detail: `${cache.total}/${cache.total} tasks cached` };
  return { status: 'done', detail: `built ${cache.total - cache.hit} of ${cache.total} tasks` };
}

function stripAnsi(text) {
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function tail(output, lines = 30) {
  const text = output.trim();
  return text ? `${text.split('\n').slice(-lines).join('\n')}\n` : '';
}

function parseArgs(argv) {
  const opts = { build: true, check: false, quiet: false };
  for (const arg of argv) {
    if (arg === '--no-build') opts.build = false;
    else if (arg === '--check') opts.check = true;
    else if (arg === '--quiet') opts.quiet = true;
    else throw new BootstrapError(`unknown argument ${arg} (expected --no-build, --check, --quiet)`);
  }
  return opts;
}

/** Runs every step in order; returns the process exit code. */
export async function main(argv = process.argv.slice(2), root = join(dirname(fileURLToPath(import.meta.url)), '..')) {
  const started = performance.now();
  let opts = { quiet: false };
  const report = (step, result, ms) => {
    if (!opts.quiet) {
      process.stderr.write(`bootstrap: ${step.padEnd(15)} ${result.status.padEnd(10)} ${result.detail} (${(ms / 1000).toFixed(2)}s)\n`);
    }
  };
  const steps = [
    ['node', () => checkNode()],
    ['debian-packages', () => ensureDebianPackages(opts)],
    ['debian-unpacked', () => ensureUnpackedDebianPackages(opts)],
    ['bpffs', () => ensureBpffs(opts)],
    ['npm-ci', () => ensureNodeModules(root, opts)],
    ['build', () => (opts.build ? build(root, opts) : { status: 'skipped', detail: '--no-build' })],
  ];
  let needed = 0;
  let current = 'arguments';
  try {
    opts = parseArgs(argv);
    for (const [step, fn] of steps) {
      current = step;
      const t0 = performance.now();
      const result = await fn();
      if (result.status === 'needed') needed++;
      report(step, result, performance.now() - t0);
    }
  } catch (err) {
    if (err instanceof BootstrapError) {
      if (err.details) process.stderr.write(err.details.endsWith('\n') ? err.details : `${err.details}\n`);
      process.stderr.write(`bootstrap: ${current} failed: ${err.message}\n`);
    } else {
      process.stderr.write(`bootstrap: ${current} failed: ${err?.stack ?? String(err)}\n`);
    }
    return 1;
  }
  const total = ((performance.now() - started) / 1000).toFixed(2);
  if (opts.check) {
    if (!opts.quiet) process.stderr.write(`bootstrap: check: ${needed ? `${needed} step(s) have work to do` : 'nothing to do'} (${total}s)\n`);
    return needed ? 1 : 0;
  }
  if (!opts.quiet) process.stderr.write(`bootstrap: ready in ${total}s\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
