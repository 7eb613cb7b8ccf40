/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** One log method: a message, or fields followed by a message. */
export interface LogFn {
  (msg: string): void;
  (fields: LogFields, msg?: string): void;
}

/**
 * The agent's logger (pino underneath). Every line carries exactly one `subsys` field: the
 * agent's own components set it, and a plugin receives a logger whose `subsys` is its name.
 * Name a plugin's inner parts with `logger.child({ component: 'ipcache' })` — a second
 * `subsys` would repeat the key in the JSON line.
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
