import type { ParseResult } from '../model.js';

export { PolicyValidationError } from './errors.js';

export interface ParseOptions {
  /** Prefix for every error path, e.g. `documents[2]`. */
  readonly path?: string;
}

/** Parses one policy document (CNP, CCNP or NetworkPolicy). Never throws. */
export function parsePolicyDocument(_doc: unknown, options: ParseOptions = {}): ParseResult {
  return { ok: false, errors: [{ path: options.path ?? '', reason: 'not implemented yet' }] };
}
