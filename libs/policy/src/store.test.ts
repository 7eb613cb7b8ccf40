import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { documentKey, PolicyStateFile } from './store.js';

const cnp = (name: string, namespace?: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  spec: { endpointSelector: {}, ...extra },
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cilia-policy-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('documentKey', () => {
  it('puts namespaced policies without a namespace in default, cluster-wide ones in none', () => {
    expect(documentKey(cnp('a'))).toBe('CiliumNetworkPolicy/default/a');
    expect(documentKey(cnp('a', 'x'))).toBe('CiliumNetworkPolicy/x/a');
    expect(documentKey({ kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'c', namespace: 'ignored' } })).toBe('CiliumClusterwideNetworkPolicy//c');
    expect(documentKey({ kind: 'NetworkPolicy', metadata: {} })).toBeUndefined();
    expect(documentKey('text')).toBeUndefined();
  });
});

describe('PolicyStateFile', () => {
  it('starts empty without a file, and a second instance reads what the first wrote', async () => {
    const path = join(dir, 'state', 'policies.json');
    const first = new PolicyStateFile(path);
    expect(await first.load()).toEqual({ documents: [] });
    await first.put([cnp('a', 'x'), cnp('b', 'x')]);
    await first.put([cnp('a', 'x', { description: 'v2' })]);
    const second = new PolicyStateFile(path);
    const { documents, problem } = await second.load();
    expect(problem).toBeUndefined();
    // Replaced in place: one `a`, the newer one, still first.
    expect(documents).toEqual([cnp('a', 'x', { description: 'v2' }), cnp('b', 'x')]);
    expect(readdirSync(join(dir, 'state'))).toEqual(['policies.json']);
  });

  it('forgets what retain refuses and writes only when that changed something', async () => {
    const path = join(dir, 'policies.json');
    const store = new PolicyStateFile(path);
    await store.put([cnp('a', 'x'), cnp('b', 'y')]);
    await store.retain((key) => key !== 'CiliumNetworkPolicy/x/a');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, documents: [cnp('b', 'y')] });
    writeFileSync(path, 'left alone');
    await store.retain(() => true);
    expect(readFileSync(path, 'utf8')).toBe('left alone');
  });

  it('keeps the last of many concurrent writes', async () => {
    const path = join(dir, 'policies.json');
    const store = new PolicyStateFile(path);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put([cnp(`p${i}`, 'x')])));
    const { documents } = await new PolicyStateFile(path).load();
    expect(documents).toHaveLength(20);
  });

  it('reports an unreadable file, moves it aside and starts empty', async () => {
    const path = join(dir, 'policies.json');
    writeFileSync(path, '{"version": 1, "documents": [');
    const store = new PolicyStateFile(path);
    const { documents, problem } = await store.load();
    expect(documents).toEqual([]);
    expect(problem).toMatch(new RegExp(`^${path}: .*JSON.*; moved to ${path}\\.unreadable-\\d+$`));
    expect(readdirSync(dir).filter((f) => f.startsWith('policies.json.unreadable-'))).toHaveLength(1);
    await store.put([cnp('a')]);
    expect((await new PolicyStateFile(path).load()).documents).toEqual([cnp('a')]);
  });

  it('names the document that has no kind or name', async () => {
    const path = join(dir, 'policies.json');
    writeFileSync(path, JSON.stringify({ version: 1, documents: [cnp('a'), { kind: 'CiliumNetworkPolicy' }] }));
    const { problem } = await new PolicyStateFile(path).load();
    expect(problem).toContain('documents[1]: expected a policy with kind and metadata.name');
  });

  it('reports a file it cannot read at all without moving it', async () => {
    const path = join(dir, 'policies.json');
    mkdirSync(path);
    const { documents, problem } = await new PolicyStateFile(path).load();
    expect(documents).toEqual([]);
    expect(problem).toMatch(/EISDIR/);
    expect(readdirSync(dir)).toEqual(['policies.json']);
  });
});
