import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigDocument, merge } from './document.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cilia-doc-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => {
  const file = join(dir, name);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
  return file;
};

describe('config documents', () => {
  it('merges mappings key by key, concatenates plugin lists, replaces other values', () => {
    expect(
      merge(
        { agent: { a: 1, b: 2 }, plugins: ['x', 'y'], list: [1, 2], s: { deep: { k: 1 } } },
        { agent: { b: 3 }, plugins: ['y', 'z'], list: [3], s: { deep: { j: 2 } } },
      ),
    ).toEqual({ agent: { a: 1, b: 3 }, plugins: ['x', 'y', 'z'], list: [3], s: { deep: { k: 1, j: 2 } } });
  });

  it('applies a built-in preset, a relative file and an npm package file, in order', () => {
    write('node_modules/@acme/distro/package.json', '{"name":"@acme/distro","version":"1.0.0"}');
    write('node_modules/@acme/distro/preset.yaml', 'plugins: [acme-plugin]\nagent: {logLevel: debug, nodeName: from-distro}\n');
    write('site.yaml', 'agent: {nodeName: from-site}\n');
    const file = write('agent.yaml', 'extends: [standalone, "@acme/distro/preset.yaml", ./site.yaml]\nplugins: [mine]\n');
    const doc = loadConfigDocument(file);
    expect(doc.sources.map((s) => s.replace(dir, '<dir>'))).toEqual([
      expect.stringMatching(/presets\/standalone\.yaml$/),
      '<dir>/node_modules/@acme/distro/preset.yaml',
      '<dir>/site.yaml',
      '<dir>/agent.yaml',
    ]);
    expect(doc.document).toMatchObject({
      plugins: ['acme-plugin', 'mine'],
      agent: { logLevel: 'debug', nodeName: 'from-site', apiSocket: '/var/run/cilia/cilia.sock' },
    });
    expect(doc.document).not.toHaveProperty('extends');
  });

  it('refuses a top level that is not a mapping, and an empty extends', () => {
    expect(() => loadConfigDocument(write('list.yaml', '- a\n- b\n'))).toThrow('expected a mapping at the top level');
    expect(() => loadConfigDocument(write('e.yaml', 'extends: [standalone, ""]\n'))).toThrow('extends[1]: expected a preset name or file path');
    expect(() => loadConfigDocument(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml:\n.*cannot read/);
  });

  it('refuses duplicate keys', () => {
    expect(() => loadConfigDocument(write('dup.yaml', 'agent: {}\nagent: {}\n'))).toThrow(/line 2, column 1/);
  });
});
