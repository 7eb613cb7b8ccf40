/**
 * Something with a start and a stop. Start hooks run in dependency order; stop hooks run
 * in the reverse order, and a failed start stops, in reverse, whatever already started.
 */
export interface LifecycleHook {
  /** Named in logs, status and errors. */
  readonly name: string;
  start?(): Promise<void> | void;
  /** `signal` aborts when the agent's shutdown budget runs out. */
  stop?(signal: AbortSignal): Promise<void> | void;
}

/** State of one hook as the lifecycle sees it. */
export type HookState = 'pending' | 'starting' | 'started' | 'stopping' | 'stopped' | 'failed';

/**
 * The agent's lifecycle: plugins append hooks while they register; the agent runs them.
 */
export interface Lifecycle {
  /** Adds a hook after those already appended (it will start after them, stop before them). */
  append(hook: LifecycleHook): void;
  /** Each hook's state, in start order. */
  states(): ReadonlyArray<{ readonly name: string; readonly state: HookState; readonly error?: string }>;
}
