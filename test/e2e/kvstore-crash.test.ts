import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedKvStore } from '@cilia/kvstore';
import { REPO } from '../support/agent.js';

/**
 * The writer: four concurrent loops putting numbered keys as fast as the store acknowledges
 * them, printing each key once its put resolved (stdout to a pipe is synchronous on Linux,
 * so a printed key was acknowledged before the kill). A small compaction threshold makes
 * kills land during snapshots too.
 */
const WRITER = `
import { createHash } from 'node:crypto';
import { EmbeddedKvStore } from '@cilia/kvstore';
const [dir, round] = process.argv.slice(2);
const valueOf = (key) => createHash('sha256').update(key).digest().subarray(0, 8 + (key.length * 37) % 300);
async function main() {
  const store = new EmbeddedKvStore(dir, { compactionThreshold: 150 });
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    for (let n = 0; ; n++) {
      const key = '/crash/' + round + '/' + w + '/' + n;
      await store.put(key, valueOf(key));
      process.stdout.write(key + '\\n');
    }
  }));
}
main().catch((err) => { console.error(err); process.exit(1); });
`;

const valueOf = (key: string): Buffer =>
  createHash('sha256')
    .update(key)
    .digest()
    .subarray(0, 8 + ((key.length * 37) % 300));

describe('embedded KvStore survives SIGKILL mid-write', () => {
  let work: string;
  let writer: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'cilia-kvstore-crash-'));
    writer = join(work, 'writer.cjs');
    // Bundled from the TS sources (the "@cilia/source" condition), so the test needs no build.
    await build({
      stdin: { contents: WRITER, resolveDir: REPO, loader: 'js' },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      conditions: ['@cilia/source'],
      external: ['cbor-extract'],
      outfile: writer,
      logLevel: 'error',
    });
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('loses no acknowledged write over 20 kills and always reopens', async () => {
    const dir = join(work, 'store');
    const acknowledged: string[] = [];
    let lastRevision = 0;
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, [writer, dir, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      try {
        // Kill at a random moment once writes are flowing.
        const deadline = Date.now() + 10_000;
        while (!out.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
        expect(err, `writer failed in round ${round}`).toBe('');
        expect(out, `writer acknowledged nothing in round ${round}`).toContain('\n');
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 400));
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const keys = out.split('\n').slice(0, -1);
      acknowledged.push(...keys);

      const store = new EmbeddedKvStore(dir);
      try {
        expect(store.revision).toBeGreaterThanOrEqual(lastRevision + keys.length);
        lastRevision = store.revision;
        const { entries } = await store.list('/crash/');
        const present = new Map(entries.map((e) => [e.key, e.value]));
        const missing = acknowledged.filter((k) => !present.has(k));
        expect(missing, `round ${round}: acknowledged but missing`).toEqual([]);
        for (const key of keys) expect(Buffer.from(present.get(key)!).equals(valueOf(key)), `value of ${key}`).toBe(true);
        // Nothing unacknowledged beyond the writes in flight at the kill (at most one per loop).
        expect(entries.length - acknowledged.length).toBeLessThanOrEqual(4 * (round + 1));
      } finally {
        await store.close();
      }
    }
    expect(acknowledged.length).toBeGreaterThan(100);
  }, 60_000);
});
