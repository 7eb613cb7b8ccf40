import { randomUUID } from 'node:crypto';
import type { KvEvent, KvLease, KvStore } from '@cilia/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** A backend under test: the `KvStore` plus what the suite needs to drive leases and clean up. */
export type ConformanceStore = KvStore & {
  close(): Promise<void>;
  /** `keepAlive: false` grants a lease nobody keeps alive, so the suite can watch it expire. */
  grantLease(ttlSeconds: number, options?: { keepAlive?: boolean }): Promise<KvLease>;
};

/** Options of {@link kvStoreConformance}. */
export interface ConformanceOptions {
  /** Lease TTL used by the expiry tests; etcd refuses TTLs below its minimum (about 2 s). Default 2. */
  readonly leaseTtlSeconds?: number;
  /**
   * Opens a second client of the same store as the last `open()` (for a shared backend such
   * as etcd); enables the cross-client lock test. An embedded store has no second client.
   */
  readonly openPeer?: () => Promise<ConformanceStore>;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The events a watch has delivered, and the watch's Unsubscribe. */
function collect(store: KvStore, prefix: string, fromRevision?: number): { events: KvEvent[]; stop: () => void } {
  const events: KvEvent[] = [];
  const stop = store.watch(prefix, (e) => events.push(e), fromRevision === undefined ? undefined : { fromRevision });
  return { events, stop };
}

const describeEvent = (e: KvEvent): string => (e.type === 'put' ? `put ${e.entry.key}=${dec(e.entry.value)}@${e.revision}` : `delete ${e.key}@${e.revision}`);

/**
 * The behaviour every `KvStore` backend must show. Registers a vitest `describe` block; call
 * it from a test file with a function opening a fresh store (an empty one, or one where the
 * suite's random key prefixes cannot collide with other data).
 */
export function kvStoreConformance(name: string, open: () => Promise<ConformanceStore>, options: ConformanceOptions = {}): void {
  const ttl = options.leaseTtlSeconds ?? 2;

  describe(`KvStore conformance: ${name}`, () => {
    let store: ConformanceStore;
    let p: string;
    const extra: ConformanceStore[] = [];

    beforeEach(async () => {
      store = await open();
      p = `/conformance/${randomUUID()}/`;
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
    });

    it('puts, gets and lists with revisions', async () => {
      expect(await store.get(`${p}a`)).toBeUndefined();
      const r1 = await store.put(`${p}a`, enc('1'));
      const r2 = await store.put(`${p}b`, enc('2'));
      await store.put(`${p.slice(0, -1)}x/other`, enc('outside'));
      expect(r2).toBeGreaterThan(r1);
      const a = await store.get(`${p}a`);
      expect(a).toMatchObject({ key: `${p}a`, createRevision: r1, modRevision: r1 });
      expect(dec(a!.value)).toBe('1');
      const r3 = await store.put(`${p}a`, enc('1b'));
      const a2 = await store.get(`${p}a`);
      expect(a2).toMatchObject({ createRevision: r1, modRevision: r3 });
      expect(dec(a2!.value)).toBe('1b');
      const listing = await store.list(p);
      expect(listing.entries.map((e) => e.key)).toEqual([`${p}a`, `${p}b`]);
      expect(listing.entries.map((e) => dec(e.value))).toEqual(['1b', '2']);
      expect(listing.revision).toBeGreaterThanOrEqual(r3);
      expect((await store.list(`${p}zzz`)).entries).toEqual([]);
    });

    it('creates only when absent', async () => {
      expect(await store.create(`${p}k`, enc('first'))).toBe(true);
      expect(await store.create(`${p}k`, enc('second'))).toBe(false);
      expect(dec((await store.get(`${p}k`))!.value)).toBe('first');
      expect(await store.delete(`${p}k`)).toBe(true);
      expect(await store.create(`${p}k`, enc('third'))).toBe(true);
    });

    it('compares and swaps on modRevision', async () => {
      const rev = await store.put(`${p}k`, enc('v1'));
      expect(await store.compareAndSwap(`${p}k`, enc('stale'), rev - 1)).toBe(false);
      expect(await store.compareAndSwap(`${p}k`, enc('v2'), rev)).toBe(true);
      expect(await store.compareAndSwap(`${p}k`, enc('v3'), rev)).toBe(false);
      expect(dec((await store.get(`${p}k`))!.value)).toBe('v2');
      expect(await store.compareAndSwap(`${p}missing`, enc('x'), 5)).toBe(false);
      expect(await store.get(`${p}missing`)).toBeUndefined();
    });

    it('lets exactly one of many concurrent compare-and-swaps win each round', async () => {
      await store.put(`${p}counter`, enc('0'));
      for (let round = 1; round <= 5; round++) {
        const current = (await store.get(`${p}counter`))!;
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => store.compareAndSwap(`${p}counter`, enc(`${round}:${i}`), current.modRevision)),
        );
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(dec((await store.get(`${p}counter`))!.value)).toBe(`${round}:${winners[0]}`);
      }
    });

    it('deletes', async () => {
      await store.put(`${p}k`, enc('v'));
      expect(await store.delete(`${p}k`)).toBe(true);
      expect(await store.delete(`${p}k`)).toBe(false);
      expect(await store.get(`${p}k`)).toBeUndefined();
      expect((await store.list(p)).entries).toEqual([]);
    });

    it('refuses bad input, naming the field', async () => {
      await expect(store.put('', enc('v'))).rejects.toThrow(/key/);
      await expect(store.put(`${p}k`, 'text' as unknown as Uint8Array)).rejects.toThrow(/value/);
      await expect(store.grantLease(0)).rejects.toThrow(/ttlSeconds/);
    });

    it('watches a prefix: every change in order, nothing outside the prefix', async () => {
      const w = collect(store, p);
      try {
        await store.put(`${p}a`, enc('1'));
        await store.put(`${p.slice(0, -1)}-sibling/x`, enc('no'));
        await store.put(`${p}b`, enc('2'));
        await store.delete(`${p}a`);
        await store.put(`${p}b`, enc('3'));
        await until('4 events', () => w.events.length >= 4, 5000);
        await sleep(100);
        expect(w.events.map((e) => describeEvent(e).replace(/@\d+$/, ''))).toEqual([`put ${p}a=1`, `put ${p}b=2`, `delete ${p}a`, `put ${p}b=3`]);
        const revs = w.events.map((e) => e.revision);
        expect([...revs].sort((x, y) => x - y)).toEqual(revs);
        expect(new Set(revs).size).toBe(revs.length);
      } finally {
        w.stop();
      }
    });

    it('resumes a watch from a revision with nothing missed or repeated', async () => {
      const writes = Array.from({ length: 30 }, (_, i) => `${p}k${i % 7}`);
      const first = collect(store, p);
      let lastSeen = 0;
      try {
        for (const [i, key] of writes.slice(0, 15).entries()) await store.put(key, enc(String(i)));
        await until('15 events', () => first.events.length >= 15, 5000);
        lastSeen = first.events[14]!.revision;
      } finally {
        first.stop();
      }
      // Changes made while nobody watches must arrive on resume, once.
      for (const [i, key] of writes.slice(15, 25).entries()) await store.put(key, enc(String(15 + i)));
      await store.delete(writes[0]!);
      const second = collect(store, p, lastSeen);
      try {
        for (const [i, key] of writes.slice(25).entries()) await store.put(key, enc(String(25 + i)));
        await until('16 events', () => second.events.length >= 16, 5000);
        await sleep(100);
        const all = [...first.events.slice(0, 15), ...second.events];
        expect(all.map((e) => (e.type === 'put' ? dec(e.entry.value) : `del ${e.key}`))).toEqual([
          ...Array.from({ length: 25 }, (_, i) => String(i)),
          `del ${writes[0]}`,
          ...Array.from({ length: 5 }, (_, i) => String(25 + i)),
        ]);
      } finally {
        second.stop();
      }
    });

    it('watching from a listing revision sees exactly the later changes', async () => {
      await store.put(`${p}before`, enc('b'));
      const { revision } = await store.list(p);
      await store.put(`${p}after`, enc('a'));
      const w = collect(store, p, revision);
      try {
        await until('1 event', () => w.events.length >= 1, 5000);
        await sleep(200);
        expect(w.events.map(describeEvent).map((s) => s.replace(/@\d+$/, ''))).toEqual([`put ${p}after=a`]);
      } finally {
        w.stop();
      }
    });

    it('stops delivering after unsubscribe', async () => {
      const w = collect(store, p);
      await store.put(`${p}a`, enc('1'));
      await until('1 event', () => w.events.length >= 1, 5000);
      w.stop();
      await store.put(`${p}a`, enc('2'));
      await sleep(300);
      expect(w.events).toHaveLength(1);
    });

    it('deletes the keys of a revoked lease', async () => {
      const lease = await store.grantLease(30);
      await store.put(`${p}leased`, enc('x'), { lease: lease.id });
      await store.put(`${p}plain`, enc('y'));
      expect((await store.get(`${p}leased`))!.lease).toBe(lease.id);
      const w = collect(store, p);
      try {
        await lease.revoke();
        expect(await store.get(`${p}leased`)).toBeUndefined();
        expect(await store.get(`${p}plain`)).toBeDefined();
        await until('the delete event', () => w.events.some((e) => e.type === 'delete' && e.key === `${p}leased`), 5000);
        await expect(store.put(`${p}late`, enc('z'), { lease: lease.id })).rejects.toThrow(/lease/i);
      } finally {
        w.stop();
      }
    });

    it('expires a lease that is not kept alive, deleting its keys', async () => {
      const lease = await store.grantLease(ttl, { keepAlive: false });
      await store.put(`${p}a`, enc('1'), { lease: lease.id });
      await store.create(`${p}b`, enc('2'), { lease: lease.id });
      const w = collect(store, p);
      try {
        const started = Date.now();
        await until('lease expiry', async () => (await store.list(p)).entries.length === 0, ttl * 1000 + 6000);
        expect(Date.now() - started).toBeGreaterThan(ttl * 1000 - 1500);
        await until('2 delete events', () => w.events.filter((e) => e.type === 'delete').length >= 2, 5000);
      } finally {
        w.stop();
      }
    });

    it('keeps a granted lease alive past its TTL', async () => {
      const lease = await store.grantLease(ttl);
      await store.put(`${p}kept`, enc('1'), { lease: lease.id });
      await sleep(ttl * 1000 + 1500);
      expect(await store.get(`${p}kept`)).toBeDefined();
      await lease.revoke();
    });

    it('locks: holders never overlap, and release lets the next in', async () => {
      let inside = 0;
      let maxInside = 0;
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const release = await store.lock(`${p}lock`);
          inside++;
          maxInside = Math.max(maxInside, inside);
          order.push(i);
          await sleep(50);
          inside--;
          await release();
        }),
      );
      expect(maxInside).toBe(1);
      expect([...order].sort()).toEqual([0, 1, 2, 3]);
      // Free again afterwards.
      const release = await store.lock(`${p}lock`);
      await release();
    });

    const openPeer = options.openPeer;
    if (openPeer) {
      it('locks across two clients of the store', async () => {
        const other = await openPeer();
        extra.push(other);
        const releaseA = await store.lock(`${p}lock`);
        let bHolds = false;
        const b = other.lock(`${p}lock`).then((release) => {
          bHolds = true;
          return release;
        });
        await sleep(300);
        expect(bHolds).toBe(false);
        await releaseA();
        const releaseB = await b;
        expect(bHolds).toBe(true);
        await releaseB();
      });
    }
  });
}
