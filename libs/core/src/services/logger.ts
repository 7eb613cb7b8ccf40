/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** One log method: a message, or fields followed by a message. */
export interface LogFn {
  (msg: string): void;
  (fields: LogFields, msg?: string): void;
}

/**
 * The agent's logger (pino underneath). Every component logs through a child carrying a
 * `subsys` field, e.g. `logger.child({ subsys: 'ipam' })`; plugins receive one already
 * named after themselves.
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: LogFields): Logger;
}
