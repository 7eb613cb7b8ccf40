/** A watch asked to resume from a revision whose events are no longer kept. */
export class KvCompactedError extends Error {
  constructor(
    readonly requestedRevision: number,
    readonly oldestResumableRevision: number,
  ) {
    super(
      `cannot watch from revision ${requestedRevision}: events up to revision ${oldestResumableRevision} were compacted; ` +
        `list the prefix again and watch from the listing's revision`,
    );
    this.name = 'KvCompactedError';
  }
}

/** A write named a lease the store does not know (never granted, expired or revoked). */
export class KvLeaseNotFoundError extends Error {
  constructor(readonly lease: number) {
    super(`lease ${lease} not found: it was never granted, or it expired or was revoked`);
    this.name = 'KvLeaseNotFoundError';
  }
}

/** Checks the arguments every backend takes, so bad input fails the same way everywhere. */
export function checkKey(key: unknown, field = 'key'): asserts key is string {
  if (typeof key !== 'string' || key === '') throw new TypeError(`${field}: must be a non-empty string, got ${JSON.stringify(key)}`);
}

export function checkValue(value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`value: must be a Uint8Array, got ${value === null ? 'null' : typeof value}`);
}

export function checkLeaseOption(options: { lease?: number } | undefined): void {
  const lease = options?.lease;
  if (lease !== undefined && (!Number.isSafeInteger(lease) || lease <= 0)) {
    throw new TypeError(`options.lease: must be a positive integer lease id, got ${JSON.stringify(lease)}`);
  }
}

export function checkTtl(ttlSeconds: unknown): asserts ttlSeconds is number {
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new TypeError(`ttlSeconds: must be an integer of at least 1, got ${JSON.stringify(ttlSeconds)}`);
  }
}
