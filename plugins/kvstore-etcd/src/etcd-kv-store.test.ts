import type { KvEvent } from '@cilia/core';
import { composeConfigSchema, parseConfig, z } from '@cilia/core';
import { kvStoreConformance } from '@cilia/kvstore/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from './test-support/etcd-server.js';
import { etcdKvStoreConfig } from './config.js';
import { EtcdKvStore } from './etcd-kv-store.js';
import plugin from './index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await EtcdServer.start();
}, 30_000);
afterAll(async () => {
  await etcd?.stop();
});

const connect = (keyPrefix = '/test'): Promise<EtcdKvStore> => EtcdKvStore.connect(etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], keyPrefix }));

kvStoreConformance('etcd', () => connect(), { leaseTtlSeconds: 2, openPeer: () => connect() });

describe('EtcdKvStore', () => {
  it('keeps keys below keyPrefix, invisible to the user', async () => {
    const a = await connect('/cluster-a');
    const raw = await connect('');
    try {
      await a.put('/k', enc('v'));
      expect(dec((await raw.get('/cluster-a/k'))!.value)).toBe('v');
      expect((await a.list('/')).entries.map((e) => e.key)).toEqual(['/k']);
      expect((await a.list('')).entries.map((e) => e.key)).toEqual(['/k']);
      expect((await raw.list('')).entries.map((e) => e.key)).toContain('/cluster-a/k');
    } finally {
      await a.close();
      await raw.close();
    }
  });

  it('resumes a watch across an etcd kill and restart with no missed or repeated event', async () => {
    const store = await connect();
    const prefix = `/restart/${Date.now()}/`;
    const events: KvEvent[] = [];
    const stop = store.watch(prefix, (e) => events.push(e));
    const leasedKey = `/restart-lease/${Date.now()}`;
    try {
      // A kept-alive lease must outlive the outage: the keep-alive stream is reopened.
      const lease = await store.grantLease(2);
      await store.put(leasedKey, enc('kept'), { lease: lease.id });
      for (let i = 0; i < 10; i++) await store.put(`${prefix}${i % 3}`, enc(String(i)));
      await until(() => events.length >= 10);
      await etcd.kill();
      await new Promise((r) => setTimeout(r, 500));
      await etcd.restart();
      // Written at once, before the watch has had time to reconnect: it must still see them.
      for (let i = 10; i < 20; i++) await store.put(`${prefix}${i % 3}`, enc(String(i)));
      await store.delete(`${prefix}0`);
      await until(() => events.length >= 21, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      expect(events.map((e) => (e.type === 'put' ? dec(e.entry.value) : `del ${e.key}`))).toEqual([
        ...Array.from({ length: 20 }, (_, i) => String(i)),
        `del ${prefix}0`,
      ]);
      const revisions = events.map((e) => e.revision);
      expect(new Set(revisions).size).toBe(21);
      await new Promise((r) => setTimeout(r, 3500));
      expect((await store.get(leasedKey))?.lease).toBe(lease.id);
    } finally {
      stop();
      await store.close();
    }
  }, 60_000);

  it('fails clearly when a TLS file is missing', () => {
    const config = etcdKvStoreConfig.parse({ endpoints: ['https://127.0.0.1:1'], tls: { caFile: '/nonexistent/ca.pem' } });
    return expect(EtcdKvStore.connect(config)).rejects.toThrow(/kvstore-etcd\.tls\.caFile: cannot read \/nonexistent\/ca\.pem/);
  });
});

describe('EtcdKvStore while etcd is down', () => {
  it('fails requests after its retries, then works again once etcd is back', async () => {
    const store = await EtcdKvStore.connect(
      etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], dialTimeoutMs: 500, retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 200 } }),
    );
    try {
      await store.put('/down/before', enc('1'));
      await etcd.kill();
      const started = Date.now();
      await expect(store.put('/down/during', enc('2'))).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(15_000);
      await etcd.restart();
      const back = Date.now();
      for (;;) {
        try {
          await store.put('/down/after', enc('3'));
          break;
        } catch (err) {
          if (Date.now() - back > 15_000) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(dec((await store.get('/down/before'))!.value)).toBe('1');
      expect(dec((await store.get('/down/after'))!.value)).toBe('3');
      // Recovery follows the configured backoff (max 200 ms here), not a fixed circuit-breaker pause.
      expect(Date.now() - back).toBeLessThan(3000);
    } finally {
      await store.close();
    }
  }, 60_000);
});

describe('kvstore-etcd config', () => {
  const parse = (section: unknown): unknown => parseConfig(composeConfigSchema(z.object({}), [plugin]), { plugins: [plugin.name], 'kvstore-etcd': section })['kvstore-etcd'];

  it('fills in defaults', () => {
    expect(parse({ endpoints: ['http://127.0.0.1:2379'] })).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
      keyPrefix: '',
      dialTimeoutMs: 5000,
      retry: { maxAttempts: 5, initialDelayMs: 100, maxDelayMs: 5000 },
    });
  });

  it('refuses bad sections, naming the key path', () => {
    expect(() => parse({})).toThrow(/kvstore-etcd\.endpoints/);
    expect(() => parse({ endpoints: ['ftp://x'] })).toThrow(/kvstore-etcd\.endpoints\[0\]/);
    expect(() => parse({ endpoints: ['http://x:1'], tls: { caFile: 'ca', certFile: 'c' } })).toThrow(/kvstore-etcd\.tls\.certFile.*keyFile/s);
    expect(() => parse({ endpoints: ['http://x:1'], auth: { username: 'u' } })).toThrow(/kvstore-etcd\.auth\.password/);
    expect(() => parse({ endpoints: ['http://x:1'], bogus: 1 })).toThrow(/bogus/);
  });

  it('provides and replaces the KvStore', () => {
    expect(plugin.provides?.map((t) => t.name)).toEqual(['cilia.KvStore']);
    expect(plugin.replaces?.map((t) => t.name)).toEqual(['cilia.KvStore']);
  });
});

async function until(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
