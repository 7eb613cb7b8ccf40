import type { KvEvent, KvStore } from '@cilia/core';
import { checkKey } from './errors.js';

/** Seconds a lock's lease lives without keep-alive: how long a dead holder blocks others. */
export const LOCK_TTL_SECONDS = 10;

/**
 * A mutual-exclusion lock on any `KvStore`: the holder owns `key`, created under a lease the
 * store keeps alive, so a holder that dies frees the lock once its lease expires. Waiters
 * watch the key and retry when it is deleted.
 */
export async function acquireLock(store: KvStore, key: string): Promise<() => Promise<void>> {
  checkKey(key);
  const lease = await store.grantLease(LOCK_TTL_SECONDS);
  const token = new TextEncoder().encode(String(lease.id));
  try {
    for (;;) {
      if (await store.create(key, token, { lease: lease.id })) break;
      const holder = await store.get(key);
      if (!holder) {
        // The holder's create may not be visible yet (or it just left): retry shortly, never in a tight loop.
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      await deletion(store, key, holder.modRevision);
    }
  } catch (err) {
    await lease.revoke().catch(() => undefined);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    // Revoking the lease deletes the key, which wakes the next waiter.
    await lease.revoke();
  };
}

/** Resolves once `key`, last modified at `modRevision`, is deleted (or a watch can't be set). */
function deletion(store: KvStore, key: string, modRevision: number): Promise<void> {
  return new Promise((resolve) => {
    let stop: (() => void) | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      stop?.();
      resolve();
    };
    try {
      stop = store.watch(
        key,
        (event: KvEvent) => {
          if (event.type === 'delete' && event.key === key) finish();
        },
        { fromRevision: modRevision },
      );
      if (done) stop();
    } catch {
      // History no longer reaches back to the holder's write: poll instead.
      setTimeout(finish, 100);
    }
  });
}
