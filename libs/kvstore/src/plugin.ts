import { join } from 'node:path';
import { definePlugin, Tokens, z } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { EmbeddedKvStore } from './embedded-kv-store.js';

/** Settings of the embedded KvStore (the `kvstore:` section). */
export const embeddedKvStoreConfig = z.strictObject({
  compactionThreshold: z
    .int()
    .min(1)
    .default(10_000)
    .describe('Log records after which the store is compacted into a snapshot (bounds the log and the replay time on start).'),
  historyLimit: z
    .int()
    .min(1)
    .default(10_000)
    .describe('Change events kept in memory so a watch can resume from a past revision; older revisions fail with a clear error.'),
});

/** The agent's default `KvStore`: single node, persisted in `<stateDir>/kvstore`. The etcd plugin replaces it. */
export const embeddedKvStorePlugin = definePlugin({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'kvstore',
  description: 'Embedded KvStore: a crash-safe revisioned key-value store in the state directory (single node)',
  config: embeddedKvStoreConfig,
  provides: [Tokens.KvStore],
  register(bind, { config, agent, logger }) {
    bind(Tokens.KvStore).toFactory(
      () =>
        new EmbeddedKvStore(join(agent.stateDir, 'kvstore'), {
          compactionThreshold: config.compactionThreshold,
          historyLimit: config.historyLimit,
          logger: logger.child({ component: 'kvstore' }),
        }),
    );
  },
  start({ resolver }) {
    // Opening replays the log: do it at start so a damaged store fails the agent's start, named.
    resolver.get(Tokens.KvStore);
  },
  async stop({ resolver }) {
    await (resolver.get(Tokens.KvStore) as EmbeddedKvStore).close();
  },
});
