// The etcd KvStore against a real etcd that wants TLS, mutual TLS or a password: what a
// multi-node cluster's etcd usually does. Certificates come from a throwaway CA made with openssl.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdKvStoreConfig } from './config.js';
import { EtcdKvStore } from './etcd-kv-store.js';
import { EtcdServer } from './test-support/etcd-server.js';
import { makeTestPki, type TestPki } from './test-support/pki.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
// Refusals come fast: few retries, short waits.
const quick = { dialTimeoutMs: 1000, retry: { maxAttempts: 1, initialDelayMs: 50, maxDelayMs: 100 } };

let dir: string;
let pki: TestPki;
let stranger: TestPki;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cilia-etcd-pki-'));
  pki = makeTestPki(dir);
  stranger = makeTestPki(dir, 'other-ca');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Connects with `config`, then a put, a list and a get of `key`: what the agent needs of etcd. */
async function roundTrip(config: unknown, key: string): Promise<string | undefined> {
  const store = await EtcdKvStore.connect(etcdKvStoreConfig.parse(config));
  try {
    await store.put(key, enc('v1'));
    expect((await store.list(key)).entries.map((e) => e.key)).toEqual([key]);
    const got = await store.get(key);
    return got && dec(got.value);
  } finally {
    await store.close();
  }
}

describe('EtcdKvStore over TLS', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await EtcdServer.start({ tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile } });
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('talks to an https endpoint whose certificate tls.caFile vouches for', async () => {
    expect(etcd.endpoint).toMatch(/^https:/);
    expect(await roundTrip({ endpoints: [etcd.endpoint], tls: { caFile: pki.caFile } }, 'tls/a')).toBe('v1');
  });

  it('refuses a server another CA signed for, saying it cannot reach etcd', async () => {
    const config = etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], tls: { caFile: stranger.caFile }, ...quick });
    await expect(EtcdKvStore.connect(config)).rejects.toThrow(/^cannot reach etcd at https:\/\/127\.0\.0\.1:\d+: .*unable to verify the first certificate/);
  });
});

describe('EtcdKvStore over mutual TLS', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await EtcdServer.start({ tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile } });
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('presents tls.certFile/keyFile and is let in', async () => {
    expect(await roundTrip({ endpoints: [etcd.endpoint], tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile } }, 'mtls/a')).toBe('v1');
  });

  it('is turned away without a client certificate, or with one another CA signed', async () => {
    const without = etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], tls: { caFile: pki.caFile }, ...quick });
    await expect(EtcdKvStore.connect(without)).rejects.toThrow(/^cannot reach etcd at https:.*bad certificate/);
    const foreign = etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], tls: { caFile: pki.caFile, certFile: stranger.clientCertFile, keyFile: stranger.clientKeyFile }, ...quick });
    await expect(EtcdKvStore.connect(foreign)).rejects.toThrow(/^cannot reach etcd at https:.*bad certificate/);
  });
});

describe('EtcdKvStore with etcd authentication', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await EtcdServer.start();
    await etcd.enableAuth('s3cret');
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('logs in with the password from passwordFile', async () => {
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    expect(await roundTrip({ endpoints: [etcd.endpoint], auth: { username: 'root', passwordFile: join(dir, 'pw') } }, 'auth/a')).toBe('v1');
  });

  it('is refused with a wrong password, and without credentials', async () => {
    const wrong = etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], auth: { username: 'root', password: 'nope' }, ...quick });
    await expect(EtcdKvStore.connect(wrong)).rejects.toThrow(/^cannot reach etcd at http:\/\/127\.0\.0\.1:\d+: .*authentication failed/);
    const anonymous = etcdKvStoreConfig.parse({ endpoints: [etcd.endpoint], ...quick });
    await expect(EtcdKvStore.connect(anonymous)).rejects.toThrow(/^cannot reach etcd at http:.*(user name is empty|permission denied)/);
  });
});
