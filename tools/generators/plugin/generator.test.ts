import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import type { Tree } from '@nx/devkit';
import { beforeEach, describe, expect, it } from 'vitest';
import pluginGenerator, { nameProblem } from './generator.js';

describe('plugin generator', () => {
  let tree: Tree;
  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace();
    tree.write('libs/core/package.json', JSON.stringify({ name: '@cilia/core', version: '1.4.2' }));
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
      devDependencies: { '@cilia/core': '^1.0.0' },
      scripts: { 'build-bpf': 'node ../../tools/bpf-build.mjs .' },
    });
    const index = tree.read('plugins/rate-limit/src/index.ts', 'utf-8')!;
    expect(index).toContain("name: '@cilia/plugin-rate-limit'");
    expect(index).toContain("apiVersion: '^1',");
    expect(index).toContain('export const RateLimitToken = defineToken<RateLimitService>');
    expect(index).toContain("new URL('../dist/bpf/rate-limit.o', import.meta.url)");
    expect(tree.read('plugins/rate-limit/bpf/rate-limit.c', 'utf-8')).toContain('int rate_limit_tc(struct __sk_buff *skb)');
  });

  it('refuses an existing directory and a bad name, writing nothing', async () => {
    tree.write('plugins/taken/package.json', '{}');
    await expect(pluginGenerator(tree, { name: 'taken' })).rejects.toThrow('plugins/taken already exists');
    await expect(pluginGenerator(tree, { name: 'Bad' })).rejects.toThrow(/cilia plugin generator: name "Bad" must be lowercase/);
    expect(tree.listChanges().map((c) => c.path).filter((p) => p.startsWith('plugins/'))).toEqual(['plugins/taken/package.json']);
  });
});
