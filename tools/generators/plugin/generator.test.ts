import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import type { Tree } from '@nx/devkit';
import { beforeEach, describe, expect, it } from 'vitest';
import pluginGenerator, { nameProblem } from './generator.js';

describe('plugin generator', () => {
  let tree: Tree;
  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace();
    tree.write('libs/core/package.json', JSON.stringify({ name: '@cilia/core', version: '1.4.2' }));
    tree.write('libs/plugin-sdk/package.json', JSON.stringify({ name: '@cilia/plugin-sdk', version: '0.3.1' }));
  });

  it('accepts lowercase dash-separated names only', () => {
    expect(nameProblem('bandwidth-edt')).toBeUndefined();
    expect(nameProblem('l7')).toBeUndefined();
    expect(nameProblem('')).toBe('name is required');
    for (const bad of ['Bandwidth', 'bandwidth_edt', '-x', 'x-', 'a--b', '7up', 'a b']) {
      expect(nameProblem(bad), bad).toMatch(/must be lowercase letters and digits in dash-separated words/);
    }
    expect(nameProblem('x'.repeat(51))).toMatch(/longer than 50 characters/);
    expect(nameProblem('plugin-x')).toMatch(/must not start with "plugin-"/);
    for (const reserved of ['agent', 'plugins', 'extends']) expect(nameProblem(reserved)).toMatch(/reserved/);
    expect(nameProblem('agent-stats')).toMatch(/must not start with "agent-": its metrics would take the agent's own prefix cilia_agent_/);
  });

  it('writes a complete package with every placeholder filled in', async () => {
    await pluginGenerator(tree, { name: 'rate-limit', description: 'Limits "rates"' });
    const files = tree.listChanges().map((c) => c.path).filter((p) => p.startsWith('plugins/')).sort();
    expect(files).toEqual([
      'plugins/rate-limit/README.md',
      'plugins/rate-limit/bpf/rate-limit.c',
      'plugins/rate-limit/package.json',
      'plugins/rate-limit/src/index.test.ts',
      'plugins/rate-limit/src/index.ts',
      'plugins/rate-limit/tsconfig.json',
      'plugins/rate-limit/tsup.config.ts',
    ]);
    for (const f of files) expect(tree.read(f, 'utf-8'), f).not.toMatch(/<%|%>|__name__/);

    const pkg = JSON.parse(tree.read('plugins/rate-limit/package.json', 'utf-8')!);
    expect(pkg).toMatchObject({
      name: '@cilia/plugin-rate-limit',
      description: 'Limits "rates"',
      peerDependencies: { '@cilia/core': '^1.0.0' },
      // Everything it needs to build and test outside this repository; the SDK builds its object.
      devDependencies: { '@cilia/core': '^1.0.0', '@cilia/plugin-sdk': '^0.3.1', typescript: '~5.9', tsup: '^8.5.0', vitest: '^4.1.0', '@types/node': '^20.19.0' },
      scripts: { 'build-bpf': 'cilia-bpf-build', build: 'tsup', test: 'vitest run' },
      // It builds against the SDK's built headers and type-checks against @cilia/core's built types.
      nx: { tags: ['type:plugin'], targets: { 'build-bpf': { dependsOn: ['^build'] }, typecheck: { dependsOn: ['^build'] } } },
    });
    for (const f of files) expect(tree.read(f, 'utf-8'), f).not.toContain('../../');
    // Its own tsconfig, not the workspace's: it compiles wherever it is copied.
    expect(JSON.parse(tree.read('plugins/rate-limit/tsconfig.json', 'utf-8')!)).not.toHaveProperty('extends');

    const index = tree.read('plugins/rate-limit/src/index.ts', 'utf-8')!;
    // Name and version come from package.json: renaming the package renames the plugin.
    expect(index).toContain("const { name, version } = createRequire(import.meta.url)('../package.json')");
    expect(index).toContain("apiVersion: '^1',");
    expect(index).toContain("new URL('../dist/bpf/rate-limit.o', import.meta.url)");
    expect(index).toContain("export const PROGRAM = 'rate_limit_drop_udp';");
    expect(index).toContain("programs: { [PROGRAM]: { attach: 'to-container', slot: 'shaping' } },");
    expect(index).toContain('constants: (ctx) => ({ cfg_port: ctx.config.port }),');
    expect(index).toContain("export const METRIC = 'cilia_rate_limit_dropped_packets_total';");
    expect(index).toContain("export const ROUTE = '/v1/rate-limit/drops';");
    const c = tree.read('plugins/rate-limit/bpf/rate-limit.c', 'utf-8')!;
    expect(c).toContain('int rate_limit_drop_udp(struct __sk_buff *skb)');
    expect(c).toContain('} rate_limit_drops SEC(".maps");');
    expect(c).toContain('CILIA_CONST(__u16, cfg_port, 0);');
    expect(c).toContain('#include "lib/slots.h"');
  });

  it("takes the workspace's versions of the tools a plugin builds with", async () => {
    tree.write('package.json', JSON.stringify({ name: 'ws', devDependencies: { typescript: '~5.9.3', vitest: '^4.2.0' } }));
    await pluginGenerator(tree, { name: 'versions' });
    const pkg = JSON.parse(tree.read('plugins/versions/package.json', 'utf-8')!);
    expect(pkg.devDependencies).toMatchObject({ typescript: '~5.9.3', vitest: '^4.2.0', tsup: '^8.5.0' });
  });

  it('refuses an existing directory and a bad name, writing nothing', async () => {
    tree.write('plugins/taken/package.json', '{}');
    await expect(pluginGenerator(tree, { name: 'taken' })).rejects.toThrow('plugins/taken already exists');
    await expect(pluginGenerator(tree, { name: 'Bad' })).rejects.toThrow(/cilia plugin generator: name "Bad" must be lowercase/);
    expect(tree.listChanges().map((c) => c.path).filter((p) => p.startsWith('plugins/'))).toEqual(['plugins/taken/package.json']);
  });
});
