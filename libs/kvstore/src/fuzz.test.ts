import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { frame, unframeAll } from './codec.js';
import { EmbeddedKvStore } from './embedded-kv-store.js';

const records = fc.array(fc.record({ seq: fc.nat(), key: fc.string({ maxLength: 20 }), n: fc.integer() }), { minLength: 1, maxLength: 12 });

/** Damage done to the end of a log: cut short, bytes flipped, garbage or a stranger's record appended. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('stranger' as const), value: fc.anything() }),
);

type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never;

function apply(image: Buffer, d: Damage): Buffer {
  switch (d.kind) {
    case 'truncate':
      return image.subarray(0, Math.floor(d.at * image.length));
    case 'flip': {
      const copy = Buffer.from(image);
      const i = Math.min(copy.length - 1, Math.floor(d.at * copy.length));
      copy[i]! ^= d.xor;
      return copy;
    }
    case 'append':
      return Buffer.concat([image, Buffer.from(d.bytes)]);
    case 'stranger':
      return Buffer.concat([image, frame(d.value ?? 0)]);
  }
}

describe('KvStore log decoding, fuzzed', () => {
  it('unframeAll takes any bytes without throwing and never claims more than it was given', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (data) => {
        const r = unframeAll(Buffer.from(data));
        expect(r.validLength).toBeLessThanOrEqual(data.length);
        if (r.validLength < data.length) expect(r.problem).toBeTypeOf('string');
      }),
      { numRuns: 3000 },
    );
  });

  it('a damaged log yields a prefix of what was written, ending exactly where that prefix ends', () => {
    fc.assert(
      fc.property(records, damage, (written, d) => {
        const frames = written.map((r) => frame(r));
        const damaged = apply(Buffer.concat(frames), d);
        const r = unframeAll<unknown>(damaged);
        const kept = Math.min(r.records.length, written.length);
        expect(r.records.slice(0, kept)).toEqual(written.slice(0, kept));
        const prefix = frames.slice(0, Math.min(r.records.length, frames.length)).reduce((n, f) => n + f.length, 0);
        if (r.records.length <= written.length) expect(r.validLength).toBe(prefix);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('EmbeddedKvStore replay of a damaged log, fuzzed', () => {
  const root = mkdtempSync(join(tmpdir(), 'cilia-kv-fuzz-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let run = 0;

  it('opens on any damaged tail with the writes before the damage, and keeps working', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 8 }), damage, async (count, d) => {
        const dir = join(root, String(run++));
        const first = await EmbeddedKvStore.open(dir);
        for (let i = 0; i < count; i++) await first.put(`k${i}`, Buffer.from(`v${i}`));
        await first.close();
        const log = join(dir, 'log.cbor');
        writeFileSync(log, apply(readFileSync(log), d));

        const reopened = await EmbeddedKvStore.open(dir);
        try {
          const { entries } = await reopened.list('k');
          const keys = entries.map((e) => e.key).sort();
          // Whatever survived is a prefix of the writes, in order, values intact.
          expect(keys).toEqual(Array.from({ length: keys.length }, (_, i) => `k${i}`).sort());
          for (const e of entries) expect(Buffer.from(e.value).toString()).toBe(`v${e.key.slice(1)}`);
          if (d.kind === 'append' || d.kind === 'stranger') expect(keys).toHaveLength(count);
          // The cut tail is gone from disk, so a new write is not stranded behind garbage.
          await reopened.put('after', Buffer.from('x'));
        } finally {
          await reopened.close();
        }
        const again = await EmbeddedKvStore.open(dir);
        try {
          const after = await again.get('after');
          expect(after && Buffer.from(after.value).toString()).toBe('x');
        } finally {
          await again.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
