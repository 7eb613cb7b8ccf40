import type { PolicyFieldError } from '../model.js';

/** Thrown where a whole input must be valid (e.g. an import); carries every field error found. */
export class PolicyValidationError extends Error {
  readonly errors: readonly PolicyFieldError[];

  constructor(errors: readonly PolicyFieldError[]) {
    super(describeErrors(errors));
    this.name = 'PolicyValidationError';
    this.errors = errors;
  }
}

function describeErrors(errors: readonly PolicyFieldError[]): string {
  const first = errors[0];
  if (!first) return 'invalid policy';
  const head = first.path ? `${first.path}: ${first.reason}` : first.reason;
  return errors.length > 1 ? `${head} (and ${errors.length - 1} more)` : head;
}
