import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/agent.js';

const exec = promisify(execFile);

// A private Nx workspace-data directory: the project graph computed here (the one the lint rule
// reads) holds this test's temporary plugins, whatever other nx processes write meanwhile.
// Made in beforeAll, not at import: a filtered run imports this file without running it.
let nxData = '';
const env = () => ({ ...process.env, NX_DAEMON: 'false', NX_WORKSPACE_DATA_DIRECTORY: nxData, NX_NO_CLOUD: 'true' });

const id = randomBytes(4).toString('hex');
const importer = `mba-${id}`;
const imported = `mbb-${id}`;
const created = [importer, imported];

interface LintMessage {
  ruleId: string | null;
  severity: number;
  message: string;
}

async function run(cmd: string, args: string[]) {
  try {
    const { stdout } = await exec(cmd, args, { cwd: REPO, env: env(), maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Lints one file and returns eslint's exit code and messages. */
async function lint(file: string): Promise<{ code: number; messages: LintMessage[] }> {
  const { code, stdout } = await run('npx', ['eslint', '--format', 'json', file]);
  const [result] = JSON.parse(stdout) as { messages: LintMessage[] }[];
  return { code, messages: result!.messages };
}

const source = (plugin: string, file: string) => join(REPO, 'plugins', plugin, 'src', file);
interface Manifest {
  name: string;
  nx?: { tags?: string[] };
}
const workspacePackages = (): Manifest[] =>
  ['libs', 'plugins', 'apps']
    .flatMap((group) => readdirSync(join(REPO, group)).map((d) => join(REPO, group, d, 'package.json')))
    .flatMap((file) => {
      try {
        return [JSON.parse(readFileSync(file, 'utf8')) as Manifest];
      } catch {
        return [];
      }
    });

describe('module boundaries: apps → plugins → libs → core', () => {
  beforeAll(async () => {
    nxData = mkdtempSync(join(tmpdir(), 'cilia-nx-data-'));
    for (const name of created) {
      const r = await run('npx', ['nx', 'g', '@cilia/tools:plugin', name, '--no-interactive']);
      if (r.code !== 0) throw new Error(`generating ${name} failed: ${JSON.stringify(r)}`);
      symlinkSync(`../../plugins/${name}`, join(REPO, 'node_modules/@cilia', `plugin-${name}`));
    }
    writeFileSync(
      source(importer, 'uses-plugin.ts'),
      `import other from '@cilia/plugin-${imported}';\n\nexport const otherName = other.name;\n`,
    );
    const lib = workspacePackages().find((p) => p.nx?.tags?.includes('type:lib'));
    if (!lib) throw new Error('no workspace package is tagged type:lib');
    writeFileSync(source(importer, 'uses-lib.ts'), `import * as lib from '${lib.name}';\n\nexport const names = Object.keys(lib);\n`);
    // Computes the project graph (with both plugins) into the private workspace-data directory.
    const projects = await run('npx', ['nx', 'show', 'projects', '--json']);
    expect(JSON.parse(projects.stdout)).toEqual(expect.arrayContaining([`@cilia/plugin-${importer}`, `@cilia/plugin-${imported}`]));
  }, 180_000);

  afterAll(() => {
    for (const name of created) {
      rmSync(join(REPO, 'node_modules/@cilia', `plugin-${name}`), { force: true });
      rmSync(join(REPO, 'plugins', name), { recursive: true, force: true });
    }
    if (nxData) rmSync(nxData, { recursive: true, force: true });
  });

  it('fails lint when a plugin imports another plugin', async () => {
    const { code, messages } = await lint(source(importer, 'uses-plugin.ts'));
    expect(code).toBe(1);
    expect(messages).toEqual([
      expect.objectContaining({
        ruleId: '@nx/enforce-module-boundaries',
        severity: 2,
        message: expect.stringMatching(/tagged with "type:plugin" can only depend on libs tagged with "type:core", "type:lib"/),
      }),
    ]);
  });

  it('passes lint when a plugin imports @cilia/core or a lib', async () => {
    expect(readFileSync(source(importer, 'index.ts'), 'utf8')).toContain("from '@cilia/core'");
    expect(await lint(source(importer, 'index.ts'))).toEqual({ code: 0, messages: [] });
    expect(await lint(source(importer, 'uses-lib.ts'))).toEqual({ code: 0, messages: [] });
  });

  it('keeps @cilia/core free of every other workspace package (package.json and imports)', async () => {
    const core = JSON.parse(readFileSync(join(REPO, 'libs/core/package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const declared = ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies'].flatMap((k) => Object.keys(core[k] ?? {}));
    const workspace = workspacePackages().map((p) => p.name);
    expect(workspace).toContain('@cilia/core');
    expect(declared.filter((d) => workspace.includes(d))).toEqual([]);

    // What the code actually imports, as Nx sees it: only npm packages, no workspace project.
    const graphFile = join(nxData, 'graph.json');
    const r = await run('npx', ['nx', 'graph', `--file=${graphFile}`]);
    expect(r.code).toBe(0);
    const graph = JSON.parse(readFileSync(graphFile, 'utf8')) as {
      graph: { nodes: Record<string, unknown>; dependencies: Record<string, { target: string }[]> };
    };
    expect(Object.keys(graph.graph.nodes)).toContain('@cilia/core');
    const dependsOn = (project: string) => (graph.graph.dependencies[project] ?? []).map((d) => d.target);
    // The graph does record workspace imports: the importing plugin's two are in it …
    expect(dependsOn(`@cilia/plugin-${importer}`)).toEqual(expect.arrayContaining(['@cilia/core', `@cilia/plugin-${imported}`]));
    // … and core has none.
    expect(dependsOn('@cilia/core').filter((t) => !t.startsWith('npm:'))).toEqual([]);
  }, 120_000);
});
