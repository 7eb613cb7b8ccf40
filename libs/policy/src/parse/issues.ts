// Shared plumbing of the parsers: a collector for field errors and notes, field-path builders,
// and type guards that never throw on arbitrary input.
import type { PolicyFieldError } from '../model.js';

/**
 * Errors past this many are summarized in one entry: a document with a million bad entries
 * must not turn into a million-entry error list.
 */
const MAX_ERRORS = 200;

/** Collects every field error and note of one document. */
export class Issues {
  readonly errors: PolicyFieldError[] = [];
  private omitted = 0;

  /** `prefix` is prepended to every error path (e.g. `documents[3]`). */
  constructor(private readonly prefix = '') {}

  error(path: string, reason: string): void {
    if (this.errors.length >= MAX_ERRORS) {
      this.omitted++;
      return;
    }
    this.errors.push({ path: joinPath(this.prefix, path) || 'document', reason });
  }

  get failed(): boolean {
    return this.errors.length > 0;
  }

  /** The errors, with a last entry counting those left out. */
  list(): PolicyFieldError[] {
    if (this.omitted === 0) return this.errors;
    return [...this.errors, { path: this.prefix || 'document', reason: `${this.omitted} more errors not listed` }];
  }
}

function joinPath(prefix: string, path: string): string {
  if (!prefix) return path;
  if (!path) return prefix;
  return path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `spec` + `ingress` → `spec.ingress`; keys that are not identifiers go in brackets. */
export function field(path: string, name: string): string {
  if (!IDENTIFIER.test(name)) return `${path}[${JSON.stringify(name)}]`;
  return path ? `${path}.${name}` : name;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

export type JsonObject = Readonly<Record<string, unknown>>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property only, so `constructor`, `toString` and friends never leak in from prototypes. */
export function own(object: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

export function has(object: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key) && object[key] !== undefined && object[key] !== null;
}

/** What a value is, for error messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value;
}

/**
 * Reports fields of `object` outside `known`, and those in `unsupported` with their own reason,
 * so a typo (`fromEndpoint`) or a feature we cannot enforce (`toFQDNs`) is never silently dropped.
 */
export function checkFields(
  object: JsonObject,
  path: string,
  issues: Issues,
  known: readonly string[],
  unsupported: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const why = Object.prototype.hasOwnProperty.call(unsupported, key) ? unsupported[key] : undefined;
    if (why !== undefined) issues.error(field(path, key), why);
    else issues.error(field(path, key), `unknown field (expected one of ${known.join(', ')})`);
  }
}

/** A list field: absent/null → undefined; not a list → error. */
export function optionalList(object: JsonObject, key: string, path: string, issues: Issues): readonly unknown[] | undefined {
  const value = own(object, key);
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    issues.error(field(path, key), `must be a list, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

/** An object field: absent/null → undefined; not an object → error. */
export function optionalObject(object: JsonObject, key: string, path: string, issues: Issues): JsonObject | undefined {
  const value = own(object, key);
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    issues.error(field(path, key), `must be an object, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function optionalString(object: JsonObject, key: string, path: string, issues: Issues): string | undefined {
  const value = own(object, key);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    issues.error(field(path, key), `must be a string, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}

export function optionalBoolean(object: JsonObject, key: string, path: string, issues: Issues): boolean | undefined {
  const value = own(object, key);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    issues.error(field(path, key), `must be true or false, got ${describeValue(value)}`);
    return undefined;
  }
  return value;
}
