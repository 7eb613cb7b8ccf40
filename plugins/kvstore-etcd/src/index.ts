import { createRequire } from 'node:module';
import { definePlugin, Tokens } from '@cilia/core';
import { Etcd3 } from 'etcd3';
import { etcdKvStoreConfig, type EtcdKvStoreConfig } from './config.js';
import { clientOptions, EtcdKvStore } from './etcd-kv-store.js';

export { EtcdKvStore, clientOptions } from './etcd-kv-store.js';
export { etcdKvStoreConfig, type EtcdKvStoreConfig } from './config.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The `KvStore` on etcd v3, for agents sharing state across nodes. Replaces the agent's
 * embedded store. An unreachable etcd at start is logged, not fatal: requests retry with
 * backoff and watches resume when it is back.
 */
export default definePlugin<EtcdKvStoreConfig>({
  name: '@cilia/plugin-kvstore-etcd',
  version,
  apiVersion: '^1.3',
  description: 'KvStore on etcd v3 (multi-node): TLS, auth, reconnect with backoff, watches resumed without gaps',
  config: etcdKvStoreConfig,
  provides: [Tokens.KvStore],
  replaces: [Tokens.KvStore],
  register(bind, { config, logger }) {
    bind(Tokens.KvStore).toFactory(
      () => new EtcdKvStore(new Etcd3(clientOptions(config)), { keyPrefix: config.keyPrefix, logger: logger.child({ component: 'etcd' }) }),
    );
  },
  async start({ resolver, config, logger }) {
    // Resolving builds the client: a missing TLS or password file fails the start, named.
    const store = resolver.get(Tokens.KvStore);
    try {
      const { revision } = await store.list('\u0000cilia-probe');
      logger.info({ endpoints: config.endpoints, revision }, 'connected to etcd');
    } catch (err) {
      logger.warn({ endpoints: config.endpoints, err: (err as Error).message }, 'etcd is unreachable; requests will retry with backoff');
    }
  },
  async stop({ resolver }) {
    await (resolver.get(Tokens.KvStore) as EtcdKvStore).close();
  },
});
