/**
 * @cilia/kvstore — the embedded `KvStore` (Cilia's default, single node, crash-safe on disk)
 * and a lock usable over any `KvStore`. The conformance suite is at `@cilia/kvstore/testing`.
 */
export { EmbeddedKvStore, type EmbeddedKvStoreOptions } from './embedded-kv-store.js';
export { embeddedKvStorePlugin, embeddedKvStoreConfig } from './plugin.js';
export { acquireLock, LOCK_TTL_SECONDS } from './lock.js';
export { KvCompactedError, KvLeaseNotFoundError } from './errors.js';
