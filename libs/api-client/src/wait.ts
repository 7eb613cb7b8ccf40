import type { Endpoint } from '@cilia/core';

/** Where {@link waitForPolicyRevision} stands after a poll. */
export interface PolicyWaitProgress {
  readonly revision: number;
  /** Endpoints whose datapath has realized `revision` (or a later one). */
  readonly realized: number;
  readonly total: number;
  /** The endpoints still below `revision`. */
  readonly behind: readonly Endpoint[];
}

/** Options of {@link waitForPolicyRevision} and `client.policy.wait`. */
export interface PolicyWaitOptions {
  /** Give up after this long. Default 30 s. */
  readonly timeoutMs?: number;
  /** How often the endpoints are read. Default 200 ms. */
  readonly pollMs?: number;
  /** Called after the first poll and whenever the count of endpoints at the revision changes. */
  readonly onProgress?: (progress: PolicyWaitProgress) => void;
}

/** Not every endpoint realized the revision in time; `behind` names those that did not. */
export class PolicyWaitTimeoutError extends Error {
  readonly revision: number;
  readonly timeoutMs: number;
  readonly behind: readonly Endpoint[];

  constructor(revision: number, timeoutMs: number, behind: readonly Endpoint[]) {
    const names = behind.slice(0, 10).map((e) => `${e.id} (${e.namespace}/${e.name}) at ${e.policyRevision}`);
    const more = behind.length > names.length ? ` and ${behind.length - names.length} more` : '';
    super(`timed out after ${timeoutMs} ms: ${behind.length} endpoint(s) below revision ${revision}: ${names.join(', ')}${more}`);
    this.name = 'PolicyWaitTimeoutError';
    this.revision = revision;
    this.timeoutMs = timeoutMs;
    this.behind = behind;
  }
}

/**
 * Polls `list` (the agent's endpoints) until every endpoint reports `policyRevision ≥ revision`;
 * after `timeoutMs`, fails with {@link PolicyWaitTimeoutError}. There is no route for this: each
 * endpoint reports the revision its datapath has realized, and this reads them.
 */
export async function waitForPolicyRevision(list: () => Promise<readonly Endpoint[]>, revision: number, options: PolicyWaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollMs = options.pollMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const endpoints = await list();
    const behind = endpoints.filter((e) => e.policyRevision < revision);
    const progress = { revision, realized: endpoints.length - behind.length, total: endpoints.length, behind };
    const key = `${progress.realized}/${progress.total}`;
    if (key !== last) options.onProgress?.(progress);
    last = key;
    if (behind.length === 0) return;
    if (Date.now() >= deadline) throw new PolicyWaitTimeoutError(revision, timeoutMs, behind);
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}
