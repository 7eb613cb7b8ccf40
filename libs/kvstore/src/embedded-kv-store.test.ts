import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KvEvent } from '@cilia/core';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedKvStore } from './embedded-kv-store.js';
import { KvCompactedError } from './errors.js';
import { kvStoreConformance } from './testing/conformance.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-kvstore-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

kvStoreConformance('embedded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-kvstore-conf-'));
  const store = await EmbeddedKvStore.open(dir, { compactionThreshold: 50 });
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
});

describe('EmbeddedKvStore persistence', () => {
  it('restores keys, revisions and leases on reopen, then expires the orphaned leases', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir);
    await a.put('/k/1', enc('one'));
    const r2 = await a.put('/k/2', enc('two'));
    await a.put('/k/1', enc('uno'));
    await a.delete('/k/2');
    const lease = await a.grantLease(1);
    await a.put('/k/leased', enc('l'), { lease: lease.id });
    const revision = a.revision;
    await a.close();

    const b = await EmbeddedKvStore.open(dir, { leaseCheckIntervalMs: 50 });
    try {
      expect(b.revision).toBe(revision);
      const one = (await b.get('/k/1'))!;
      expect(dec(one.value)).toBe('uno');
      expect(one.createRevision).toBe(r2 - 1);
      expect(await b.get('/k/2')).toBeUndefined();
      // Nobody in this process holds the old lease: it runs out its TTL and takes its key along.
      expect(await b.get('/k/leased')).toBeDefined();
      await new Promise((r) => setTimeout(r, 1500));
      expect(await b.get('/k/leased')).toBeUndefined();
      const next = await b.grantLease(5);
      expect(next.id).toBeGreaterThan(lease.id);
    } finally {
      await b.close();
    }
  });

  it('compacts into a snapshot and restores from snapshot plus log', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir, { compactionThreshold: 10 });
    for (let i = 0; i < 25; i++) await a.put(`/c/${i % 8}`, enc(String(i)));
    await a.close();
    expect(statSync(join(dir, 'snapshot.cbor')).size).toBeGreaterThan(0);
    // 25 writes with a threshold of 10: two compactions, 5 records left in the log.
    expect(statSync(join(dir, 'log.cbor')).size).toBeLessThan(5 * 64);
    const b = await EmbeddedKvStore.open(dir);
    try {
      expect(b.revision).toBe(25);
      const { entries } = await b.list('/c/');
      expect(entries.map((e) => dec(e.value))).toEqual(['24', '17', '18', '19', '20', '21', '22', '23']);
    } finally {
      await b.close();
    }
  });

  it('cuts off a torn tail and keeps every complete record', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir);
    for (let i = 0; i < 5; i++) await a.put(`/t/${i}`, enc(`value-${i}`));
    await a.close();
    const log = join(dir, 'log.cbor');
    const size = statSync(log).size;
    truncateSync(log, size - 3);
    const b = await EmbeddedKvStore.open(dir);
    try {
      expect((await b.list('/t/')).entries.map((e) => e.key)).toEqual(['/t/0', '/t/1', '/t/2', '/t/3']);
      expect(statSync(log).size).toBeLessThan(size - 3);
      // The next write lands on a clean boundary.
      await b.put('/t/new', enc('n'));
    } finally {
      await b.close();
    }
    const c = await EmbeddedKvStore.open(dir);
    try {
      expect((await c.list('/t/')).entries.map((e) => e.key)).toEqual(['/t/0', '/t/1', '/t/2', '/t/3', '/t/new']);
    } finally {
      await c.close();
    }
  });

  it('stops replay at a record whose checksum does not match', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir);
    await a.put('/x/a', enc('aaaa'));
    await a.put('/x/b', enc('bbbb'));
    await a.close();
    const log = join(dir, 'log.cbor');
    const image = readFileSync(log);
    image.writeUInt8(image.readUInt8(image.length - 2) ^ 0xff, image.length - 2);
    writeFileSync(log, image);
    appendFileSync(log, Buffer.from([0, 0, 0, 4, 1, 2, 3, 4, 9, 9, 9, 9]));
    const b = await EmbeddedKvStore.open(dir);
    try {
      expect((await b.list('/x/')).entries.map((e) => e.key)).toEqual(['/x/a']);
    } finally {
      await b.close();
    }
  });

  it('refuses an unreadable snapshot, naming the file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'snapshot.cbor'), Buffer.from('garbage!garbage!'));
    expect(() => new EmbeddedKvStore(dir)).toThrow(/snapshot\.cbor is unreadable/);
  });

  it('refuses a second open of the same directory', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir);
    try {
      expect(() => new EmbeddedKvStore(dir)).toThrow(/already open/);
    } finally {
      await a.close();
    }
  });

  it('fails a watch from a revision older than its history, clearly', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir, { historyLimit: 5 });
    try {
      for (let i = 0; i < 12; i++) await a.put(`/h/${i}`, enc(String(i)));
      expect(() => a.watch('/h/', () => undefined, { fromRevision: 2 })).toThrow(KvCompactedError);
      expect(() => a.watch('/h/', () => undefined, { fromRevision: 2 })).toThrow(/compacted/);
      const events: KvEvent[] = [];
      const stop = a.watch('/h/', (e) => events.push(e), { fromRevision: 7 });
      await new Promise((r) => setTimeout(r, 20));
      stop();
      expect(events.map((e) => e.revision)).toEqual([8, 9, 10, 11, 12]);
    } finally {
      await a.close();
    }
  });

  it('decides writes against those in flight but shows them to readers only once durable', async () => {
    const dir = tempDir();
    const a = await EmbeddedKvStore.open(dir);
    try {
      const put = a.put('/f/k', enc('v'));
      // Not yet synced: invisible to reads, lists and the revision, yet a create already loses.
      expect(await a.get('/f/k')).toBeUndefined();
      expect((await a.list('/f/')).entries).toEqual([]);
      expect(a.revision).toBe(0);
      expect(await a.create('/f/k', enc('other'))).toBe(false);
      expect(await a.compareAndSwap('/f/k', enc('w'), 1)).toBe(true);
      expect(await put).toBe(1);
      expect(dec((await a.get('/f/k'))!.value)).toBe('w');
      expect(await a.get('/f/k')).toMatchObject({ createRevision: 1, modRevision: 2 });
      const lease = await a.grantLease(30);
      await a.put('/f/leased', enc('l'), { lease: lease.id });
      const revoke = lease.revoke();
      expect(await a.get('/f/leased')).toBeDefined();
      expect(await a.create('/f/leased', enc('again'))).toBe(true);
      await revoke;
      expect(dec((await a.get('/f/leased'))!.value)).toBe('again');
    } finally {
      await a.close();
    }
  });

  it('refuses a bad fromRevision and bad options', async () => {
    const dir = tempDir();
    expect(() => new EmbeddedKvStore(dir, { compactionThreshold: 0 })).toThrow(/compactionThreshold/);
    const a = await EmbeddedKvStore.open(dir);
    try {
      expect(() => a.watch('/', () => undefined, { fromRevision: -1 })).toThrow(/fromRevision/);
      await expect(a.put('/k', enc('v'), { lease: 999 })).rejects.toThrow(/lease 999 not found/);
    } finally {
      await a.close();
    }
  });
});
