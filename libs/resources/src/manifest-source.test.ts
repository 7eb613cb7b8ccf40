import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger, ResourceEvent, ResourceKind } from '@cilia/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestDirectorySource } from './manifest-source.js';

/** A logger that keeps its lines, so tests can assert what was reported. */
function memoryLogger(lines: { level: string; fields: Record<string, unknown>; msg?: string }[]): Logger {
  const fn = (level: string) => (a: unknown, b?: string) =>
    typeof a === 'string' ? lines.push({ level, fields: {}, msg: a }) : lines.push({ level, fields: a as Record<string, unknown>, msg: b });
  const logger: Logger = {
    trace: fn('trace'),
    debug: fn('debug'),
    info: fn('info'),
    warn: fn('warn'),
    error: fn('error'),
    fatal: fn('fatal'),
    child: () => logger,
  };
  return logger;
}

const pod = (name: string, labels: Record<string, string>, namespace?: string) =>
  [
    'apiVersion: v1',
    'kind: Pod',
    'metadata:',
    `  name: ${name}`,
    ...(namespace ? [`  namespace: ${namespace}`] : []),
    '  labels:',
    ...Object.entries(labels).map(([k, v]) => `    ${k}: ${v}`),
    'spec:',
    '  containers:',
    '    - name: main',
    '      ports: [{ name: http, containerPort: 8080 }]',
    '',
  ].join('\n');

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const brief = (e: ResourceEvent) => {
  switch (e.type) {
    case 'upsert':
      return `upsert ${e.ref.kind} ${e.ref.namespace ?? ''}/${e.ref.name} ${JSON.stringify(e.object.metadata.labels ?? {})}`;
    case 'delete':
      return `delete ${e.ref.kind} ${e.ref.namespace ?? ''}/${e.ref.name}`;
    case 'invalid':
      return `invalid ${e.origin} ${e.path}`;
    case 'synced':
      return 'synced';
  }
};

describe('ManifestDirectorySource', () => {
  let dir: string;
  let source: ManifestDirectorySource | undefined;
  let log: { level: string; fields: Record<string, unknown>; msg?: string }[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-manifests-'));
    log = [];
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(options: { kinds?: ResourceKind[]; resyncIntervalMs?: number; directory?: string; stateFile?: string; maxFileBytes?: number } = {}) {
    source = new ManifestDirectorySource({
      directory: options.directory ?? dir,
      debounceMs: 50,
      resyncIntervalMs: options.resyncIntervalMs ?? 0,
      logger: memoryLogger(log),
      ...(options.stateFile ? { stateFile: options.stateFile } : {}),
      ...(options.maxFileBytes ? { maxFileBytes: options.maxFileBytes } : {}),
    });
    const events: string[] = [];
    const raw: ResourceEvent[] = [];
    source.subscribe(options.kinds ?? ['Pod', 'Namespace'], (e) => {
      raw.push(e);
      events.push(brief(e));
    });
    await source.start();
    await until('synced', () => events.includes('synced'));
    return { source, events, raw };
  }

  /** Waits until `events` has grown by `n`, then a little longer to catch extras. */
  async function next(events: string[], n: number, from = events.length): Promise<string[]> {
    await until(`${n} more events`, () => events.length >= from + n);
    await new Promise((r) => setTimeout(r, 200));
    return events.slice(from);
  }

  it('delivers the objects present at start as upserts, then synced, and logs the counts', async () => {
    mkdirSync(join(dir, 'pods'));
    writeFileSync(join(dir, 'pods', 'web.yaml'), pod('web', { app: 'web' }));
    writeFileSync(join(dir, 'shop.yml'), `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\n${pod('db', { app: 'db' }, 'shop')}`);
    writeFileSync(join(dir, 'README.md'), 'not a manifest');
    writeFileSync(join(dir, '.hidden.yaml'), 'not: [valid');
    const { events, raw } = await open();
    expect(events).toEqual(['upsert Namespace /shop {}', 'upsert Pod default/web {"app":"web"}', 'upsert Pod shop/db {"app":"db"}', 'synced']);
    expect(raw[1]).toMatchObject({ type: 'upsert', object: { metadata: { namespace: 'default' } } });
    const summary = log.find((l) => l.msg === 'manifest directory read');
    expect(summary?.fields).toMatchObject({ directory: dir, files: 2, objects: 3, kinds: { Pod: 2, Namespace: 1 }, invalid: 0 });
    expect(source!.report()).toEqual({
      directory: dir,
      exists: true,
      objects: [
        { kind: 'Namespace', name: 'shop', file: 'shop.yml' },
        { kind: 'Pod', namespace: 'default', name: 'web', file: 'pods/web.yaml' },
        { kind: 'Pod', namespace: 'shop', name: 'db', file: 'shop.yml' },
      ],
      invalid: [],
    });
  });

  it('follows a file created, relabelled and deleted', async () => {
    const { events } = await open();
    expect(events).toEqual(['synced']);
    const file = join(dir, 'web.yaml');
    writeFileSync(file, pod('web', { app: 'web' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web"}']);
    writeFileSync(file, pod('web', { app: 'web', tier: 'front' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web","tier":"front"}']);
    unlinkSync(file);
    expect(await next(events, 1)).toEqual(['delete Pod default/web']);
    expect(source!.report().objects).toEqual([]);
  });

  it('yields upserts only for changed objects and deletes for objects gone from an edited file', async () => {
    const file = join(dir, 'all.yaml');
    writeFileSync(file, [pod('a', { app: 'a' }), pod('b', { app: 'b' }), pod('c', { app: 'c' })].join('---\n'));
    const { events } = await open();
    expect(events).toHaveLength(4);
    writeFileSync(file, [pod('a', { app: 'a' }), pod('c', { app: 'c2' })].join('---\n'));
    expect((await next(events, 2)).sort()).toEqual(['delete Pod default/b', 'upsert Pod default/c {"app":"c2"}']);
  });

  it('reports an invalid file with file, field path and reason, and keeps what it defined before', async () => {
    const file = join(dir, 'web.yaml');
    writeFileSync(file, pod('web', { app: 'web' }));
    const { events, raw } = await open();
    writeFileSync(file, pod('web', { app: '5', tier: 'front' })); // app: 5 is a number in YAML
    const invalidEvents = await next(events, 1);
    expect(invalidEvents).toEqual(['invalid web.yaml metadata.labels.app']);
    expect(raw.at(-1)).toMatchObject({ type: 'invalid', origin: 'web.yaml', path: 'metadata.labels.app', reason: expect.stringContaining('expected string') });
    expect(source!.report()).toMatchObject({
      objects: [{ kind: 'Pod', name: 'web', file: 'web.yaml' }],
      invalid: [{ file: 'web.yaml', path: 'metadata.labels.app', reason: expect.stringContaining('expected string'), line: 6 }],
    });
    const warning = log.find((l) => l.level === 'warn' && l.msg?.startsWith('invalid manifest web.yaml: metadata.labels.app: '));
    expect(warning?.fields).toMatchObject({ file: 'web.yaml', path: 'metadata.labels.app' });

    // Fixed: applied, and no longer listed.
    writeFileSync(file, pod('web', { app: 'web', tier: 'front' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web","tier":"front"}']);
    expect(source!.report().invalid).toEqual([]);
  });

  it('applies nothing of a new invalid file, and deleting it clears the report', async () => {
    const { events } = await open();
    writeFileSync(join(dir, 'bad.yaml'), `${pod('ok', { app: 'ok' })}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [broken\n`);
    const got = await next(events, 1);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^invalid bad\.yaml \[1\]$/);
    expect(source!.report().objects).toEqual([]);
    expect(source!.report().invalid[0]!.reason).toMatch(/^YAML syntax: /);
    unlinkSync(join(dir, 'bad.yaml'));
    await until('the report to clear', () => source!.report().invalid.length === 0);
    expect(events.slice(2)).toEqual([]);
  });

  it('lets the first file keep an object a second file defines too, and hands it over when the first lets go', async () => {
    writeFileSync(join(dir, 'a.yaml'), pod('web', { app: 'a' }));
    writeFileSync(join(dir, 'b.yaml'), `${pod('other', { app: 'o' })}---\n${pod('web', { app: 'b' })}`);
    const { events } = await open();
    expect(events).toEqual(['upsert Pod default/web {"app":"a"}', 'invalid b.yaml [1].metadata.name', 'synced']);
    expect(source!.report().invalid).toEqual([{ file: 'b.yaml', path: '[1].metadata.name', reason: 'Pod default/web is already defined in a.yaml' }]);
    unlinkSync(join(dir, 'a.yaml'));
    expect((await next(events, 2)).sort()).toEqual(['upsert Pod default/other {"app":"o"}', 'upsert Pod default/web {"app":"b"}']);
    expect(source!.report()).toMatchObject({ invalid: [], objects: [{ name: 'other', file: 'b.yaml' }, { name: 'web', file: 'b.yaml' }] });
  });

  it('reads an editor-style save (temp file, then rename over the original) once', async () => {
    const file = join(dir, 'web.yaml');
    writeFileSync(file, pod('web', { app: 'web' }));
    const { events } = await open();
    const temp = join(dir, '.web.yaml.swp');
    writeFileSync(temp, pod('web', { app: 'web2' }));
    renameSync(temp, file);
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web2"}']);
  });

  it('reads a burst of writes once it is over, never the half-written file', async () => {
    const file = join(dir, 'web.yaml');
    const { events } = await open();
    const full = pod('web', { app: 'final' });
    writeFileSync(file, full.slice(0, 40)); // truncated: invalid if it were read
    writeFileSync(file, pod('web', { app: 'middle' }));
    writeFileSync(file, full);
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"final"}']);
  });

  it('picks up files in a new subdirectory', async () => {
    const { events } = await open();
    mkdirSync(join(dir, 'team', 'pods'), { recursive: true });
    writeFileSync(join(dir, 'team', 'pods', 'web.yaml'), pod('web', { app: 'web' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web"}']);
    writeFileSync(join(dir, 'team', 'pods', 'web.yaml'), pod('web', { app: 'web3' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web3"}']);
    rmSync(join(dir, 'team'), { recursive: true });
    expect(await next(events, 1)).toEqual(['delete Pod default/web']);
  });

  it('refuses a file over maxFileBytes without reading it, keeping what it defined before', async () => {
    const file = join(dir, 'web.yaml');
    writeFileSync(file, pod('web', { app: 'web' }));
    const { events } = await open({ maxFileBytes: 1024 });
    expect(events).toEqual(['upsert Pod default/web {"app":"web"}', 'synced']);
    // Valid YAML, only too long: a comment pads it past the limit.
    writeFileSync(file, `${pod('web', { app: 'big' })}# ${'x'.repeat(2000)}\n`);
    expect(await next(events, 1)).toEqual(['invalid web.yaml ']);
    expect(source!.report()).toMatchObject({
      objects: [{ kind: 'Pod', name: 'web', file: 'web.yaml' }],
      invalid: [{ file: 'web.yaml', path: '', reason: 'file is larger than manifests.maxFileBytes (1024 bytes); not read' }],
    });
    writeFileSync(file, pod('web', { app: 'small' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"small"}']);
    expect(source!.report().invalid).toEqual([]);
  });

  it('refuses symlinks leading out of the directory and reads those that stay inside (a ConfigMap mount)', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'cilia-elsewhere-'));
    try {
      writeFileSync(join(elsewhere, 'secret.yaml'), pod('stolen', { app: 'x' }));
      // A mounted ConfigMap: the visible name links into ..data, itself a link to a dated directory.
      mkdirSync(join(dir, '..2026_12_06'));
      writeFileSync(join(dir, '..2026_12_06', 'web.yaml'), pod('web', { app: 'web' }));
      symlinkSync('..2026_12_06', join(dir, '..data'));
      symlinkSync('..data/web.yaml', join(dir, 'web.yaml'));
      symlinkSync(join(elsewhere, 'secret.yaml'), join(dir, 'outside.yaml'));
      symlinkSync('../' + join(elsewhere.split('/').pop()!, 'secret.yaml'), join(dir, 'relative.yaml'));
      const { events } = await open();
      expect(events.sort()).toEqual(['invalid outside.yaml ', 'invalid relative.yaml ', 'synced', 'upsert Pod default/web {"app":"web"}']);
      expect(source!.report().invalid).toEqual([
        { file: 'outside.yaml', path: '', reason: `a symlink leading outside the manifest directory (to ${join(elsewhere, 'secret.yaml')}); not read` },
        { file: 'relative.yaml', path: '', reason: `a symlink leading outside the manifest directory (to ${join(elsewhere, 'secret.yaml')}); not read` },
      ]);
      unlinkSync(join(dir, 'outside.yaml'));
      unlinkSync(join(dir, 'relative.yaml'));
      await until('report cleared', () => source!.report().invalid.length === 0);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('starts on a missing directory with nothing, and reads it once it appears', async () => {
    const missing = join(dir, 'later');
    const { events } = await open({ directory: missing, resyncIntervalMs: 100 });
    expect(events).toEqual(['synced']);
    expect(source!.report()).toMatchObject({ exists: false, objects: [] });
    expect(log.some((l) => l.level === 'warn' && l.msg?.includes('does not exist'))).toBe(true);
    mkdirSync(missing);
    writeFileSync(join(missing, 'web.yaml'), pod('web', { app: 'web' }));
    expect(await next(events, 1)).toEqual(['upsert Pod default/web {"app":"web"}']);
    expect(source!.report().exists).toBe(true);
  });

  it('keeps what a file defined across a restart when the file broke while it was down', async () => {
    const manifests = join(dir, 'manifests');
    const stateFile = join(dir, 'state', 'manifests.json');
    mkdirSync(manifests);
    writeFileSync(join(manifests, 'web.yaml'), pod('web', { app: 'web' }));
    writeFileSync(join(manifests, 'db.yaml'), pod('db', { app: 'db' }));
    writeFileSync(join(manifests, 'cache.yaml'), pod('cache', { app: 'cache' }));
    await open({ directory: manifests, stateFile });
    await source!.stop();

    writeFileSync(join(manifests, 'web.yaml'), pod('web', { app: 'web', tier: '[' })); // broken
    unlinkSync(join(manifests, 'db.yaml')); // gone
    writeFileSync(join(manifests, 'cache.yaml'), pod('cache', { app: 'cache2' })); // changed
    const { events } = await open({ directory: manifests, stateFile });
    expect(events).toEqual(['upsert Pod default/cache {"app":"cache2"}', 'upsert Pod default/web {"app":"web"}', 'invalid web.yaml ', 'synced']);
    expect(source!.report().objects.map((o) => `${o.name}:${o.file}`)).toEqual(['cache:cache.yaml', 'web:web.yaml']);

    // Without the remembered state, the broken file would contribute nothing.
    await source!.stop();
    rmSync(stateFile);
    const fresh = await open({ directory: manifests, stateFile });
    expect(fresh.events).toEqual(['upsert Pod default/cache {"app":"cache2"}', 'invalid web.yaml ', 'synced']);
  });

  it('gives each subscriber its kinds only, and a late subscriber the current state first', async () => {
    writeFileSync(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n');
    writeFileSync(join(dir, 'web.yaml'), pod('web', { app: 'web' }));
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Pod\n');
    const { events } = await open({ kinds: ['Namespace'] });
    expect(events).toEqual(['upsert Namespace /shop {}', 'invalid bad.yaml metadata', 'synced']);
    const late: string[] = [];
    const unsubscribe = source!.subscribe(['Pod'], (e) => late.push(brief(e)));
    expect(late).toEqual([]); // never called back before subscribe returns
    await until('the late snapshot', () => late.includes('synced'));
    expect(late).toEqual(['upsert Pod default/web {"app":"web"}', 'invalid bad.yaml metadata', 'synced']);
    unsubscribe();
    writeFileSync(join(dir, 'web.yaml'), pod('web', { app: 'x' }));
    writeFileSync(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { a: b } }\n');
    expect(await next(events, 1)).toEqual(['upsert Namespace /shop {"a":"b"}']);
    expect(late).toHaveLength(3);
  });
});

describe('the standalone example (examples/standalone/manifests)', () => {
  it('is valid: a Namespace and two Pods, nothing refused', async () => {
    const directory = fileURLToPath(new URL('../../../examples/standalone/manifests', import.meta.url));
    const source = new ManifestDirectorySource({ directory, debounceMs: 50, resyncIntervalMs: 0, logger: memoryLogger([]) });
    await source.start();
    try {
      expect(source.report()).toMatchObject({
        invalid: [],
        objects: [
          { kind: 'Namespace', name: 'shop' },
          { kind: 'Pod', namespace: 'shop', name: 'backend' },
          { kind: 'Pod', namespace: 'shop', name: 'frontend' },
        ],
      });
    } finally {
      await source.stop();
    }
  });
});
