import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject } from '@cilia/bpf';
import { makePinRoot, packet, removePinRoot, TC_ACT } from '@cilia/bpf/testing';
import { REPO, startAgent } from '../support/agent.js';

const exec = promisify(execFile);

// No daemon: each nx run computes the project graph afresh, so it sees the new plugin. The
// shared task cache stays on, so @cilia/core (a build dependency) is not rebuilt under other
// tests that are using it.
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };

const name = `gen-${randomBytes(4).toString('hex')}`;
const cName = name.replaceAll('-', '_');
const packageName = `@cilia/plugin-${name}`;
const dir = join(REPO, 'plugins', name);
const link = join(REPO, 'node_modules/@cilia', `plugin-${name}`);

async function run(cmd: string, args: string[], cwd = REPO) {
  try {
    return await exec(cmd, args, { cwd, env, maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const nx = (...args: string[]) => run('npx', ['nx', ...args, '--outputStyle=static']);

describe('nx g @cilia/tools:plugin', () => {
  beforeAll(async () => {
    await run('npx', ['nx', 'g', '@cilia/tools:plugin', name, '--description', 'made by the generator e2e test', '--no-interactive']);
    // What `npm install` does for a new workspace package.
    symlinkSync(`../../plugins/${name}`, link);
  }, 120_000);

  afterAll(() => {
    rmSync(link, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a plugin package following the workspace pattern', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: packageName,
      version: '0.1.0',
      type: 'module',
      files: ['dist', 'README.md'],
      peerDependencies: { '@cilia/core': '^1.0.0' },
      devDependencies: { '@cilia/core': '^1.0.0', '@cilia/plugin-sdk': '^0.1.0' },
      scripts: { 'build-bpf': 'cilia-bpf-build' },
      nx: { tags: ['type:plugin'] },
      exports: { '.': { '@cilia/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' } },
    });
    for (const f of ['src/index.ts', 'src/index.test.ts', `bpf/${name}.c`, 'README.md', 'tsconfig.json', 'tsup.config.ts']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
  });

  it('refuses to overwrite an existing plugin and refuses a malformed name', async () => {
    await expect(run('npx', ['nx', 'g', '@cilia/tools:plugin', name, '--no-interactive'])).rejects.toThrow(
      `plugins/${name} already exists`,
    );
    await expect(run('npx', ['nx', 'g', '@cilia/tools:plugin', 'Not_A_Name', '--no-interactive'])).rejects.toThrow(/should match the pattern/);
    await expect(run('npx', ['nx', 'g', '@cilia/tools:plugin', 'plugins', '--no-interactive'])).rejects.toThrow(/reserved/);
    expect(existsSync(join(REPO, 'plugins/Not_A_Name'))).toBe(false);
    expect(existsSync(join(REPO, 'plugins/plugins'))).toBe(false);
  }, 120_000);

  it('passes lint, typecheck and build; the package ships dist/index.js and dist/bpf/<name>.o', async () => {
    await nx('run-many', '-t', 'lint', 'typecheck', 'build', '-p', packageName);
    expect(existsSync(join(dir, 'dist/index.js'))).toBe(true);
    expect(existsSync(join(dir, 'dist/index.d.ts'))).toBe(true);
    const object = readFileSync(join(dir, `dist/bpf/${name}.o`));
    expect(object.readUInt16LE(18), 'e_machine EM_BPF').toBe(247);

    // What `npm publish` would ship: the build, the BPF object, no sources.
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], dir);
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(['README.md', 'dist/index.d.ts', 'dist/index.js', `dist/bpf/${name}.o`, 'package.json']));
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('bpf/'))).toEqual([]);
  }, 240_000);

  it('passes its own tests', async () => {
    const { stdout } = await run('npx', ['vitest', 'run', '--root', REPO, `plugins/${name}`]);
    expect(stdout).toMatch(/Tests\s+.*4 passed/);
  }, 120_000);

  it("its slot program passes this kernel's verifier, drops UDP to the configured port and counts it", () => {
    const pinRoot = makePinRoot('gen');
    const object = BpfObject.open(join(dir, `dist/bpf/${name}.o`), { pinRoot, constants: { cfg_port: 9999 } });
    try {
      object.load();
      const program = object.program(`${cName}_drop_udp`);
      const udp = (dport: number) => packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1000, dport }).payload('x').build();
      const tcp = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).tcp({ sport: 1000, dport: 9999 }).build();
      expect(program.testRun({ data: udp(9999) }).retval).toBe(TC_ACT.SHOT);
      // Anything else is handed back to the base program; with none installed here, it passes.
      expect(program.testRun({ data: udp(9998) }).retval).toBe(TC_ACT.OK);
      expect(program.testRun({ data: tcp }).retval).toBe(TC_ACT.OK);
      const drops = object.perCpuMap(`${cName}_drops`).lookup(Buffer.alloc(4)) ?? [];
      expect(drops.reduce((n, v) => n + v.readBigUInt64LE(0), 0n)).toBe(1n);
    } finally {
      object.close();
      removePinRoot(pinRoot);
    }
  });

  it('is loaded and started by the agent when a config lists it, its program in its slot', async () => {
    const agent = await startAgent({ config: { plugins: [packageName], [name]: { port: 9999 } } });
    try {
      const status = await agent.status();
      const entry = status.plugins.find((p) => p.name === packageName);
      expect(entry).toMatchObject({
        name: packageName,
        version: '0.1.0',
        origin: 'configured',
        state: 'started',
        provides: ['cilia.MetricsCollectors', 'cilia.ApiRoutes'],
        slots: [{ attach: 'to-container', slot: 'shaping', object: name, program: `${cName}_drop_udp` }],
      });
      const lines = agent
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toContainEqual(
        expect.objectContaining({ subsys: packageName, msg: 'dropping UDP to port 9999', port: 9999, object: join(dir, `dist/bpf/${name}.o`) }),
      );
    } finally {
      const result = await agent.stop();
      expect(result.code).toBe(0);
    }
  });
});
