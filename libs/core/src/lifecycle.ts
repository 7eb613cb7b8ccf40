import type { HookState, Lifecycle, LifecycleHook } from './services/lifecycle.js';

/** A hook failed to start; the hooks started before it have been stopped again. */
export class StartError extends Error {
  constructor(
    readonly hook: string,
    override readonly cause: unknown,
  ) {
    super(`${hook} failed to start: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'StartError';
  }
}

/** What a stop run did. */
export interface StopReport {
  /** Hooks whose stop had not finished when the budget ran out. */
  readonly timedOut: readonly string[];
  /** Hooks whose stop threw, with the message. */
  readonly failed: ReadonlyArray<{ readonly name: string; readonly error: string }>;
}

interface Slot {
  readonly hook: LifecycleHook;
  state: HookState;
  error?: string;
}

/**
 * Runs hooks as cilium/hive does: start in the order appended (dependency order); a failed
 * start stops what already started, in reverse; stop runs in reverse within a time budget.
 */
export class LifecycleRunner implements Lifecycle {
  readonly #slots: Slot[] = [];
  #running = false;

  append(hook: LifecycleHook): void {
    this.#slots.push({ hook, state: 'pending' });
  }

  states(): ReadonlyArray<{ name: string; state: HookState; error?: string }> {
    return this.#slots.map((s) => ({ name: s.hook.name, state: s.state, ...(s.error ? { error: s.error } : {}) }));
  }

  /** Starts every pending hook in order; on failure stops the started ones and throws {@link StartError}. */
  async start(stopBudgetMs = 10_000): Promise<void> {
    this.#running = true;
    // Hooks may append further hooks while starting; those start in turn.
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i]!;
      if (slot.state !== 'pending') continue;
      slot.state = 'starting';
      try {
        await slot.hook.start?.();
        slot.state = 'started';
      } catch (err) {
        slot.state = 'failed';
        slot.error = err instanceof Error ? err.message : String(err);
        await this.stop(stopBudgetMs);
        throw new StartError(slot.hook.name, err);
      }
    }
  }

  /** Stops every started hook in reverse order, spending at most `budgetMs` in all. */
  async stop(budgetMs: number): Promise<StopReport> {
    const deadline = Date.now() + budgetMs;
    const timedOut: string[] = [];
    const failed: { name: string; error: string }[] = [];
    for (const slot of [...this.#slots].reverse()) {
      if (slot.state !== 'started') continue;
      slot.state = 'stopping';
      const controller = new AbortController();
      const remaining = Math.max(0, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        Promise.resolve()
          .then(() => slot.hook.stop?.(controller.signal))
          .then(
            () => 'ok' as const,
            (err: unknown) => err,
          ),
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), remaining);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === 'ok') {
        slot.state = 'stopped';
      } else if (outcome === 'timeout') {
        controller.abort();
        slot.state = 'failed';
        slot.error = 'stop timed out';
        timedOut.push(slot.hook.name);
      } else {
        slot.state = 'failed';
        slot.error = outcome instanceof Error ? outcome.message : String(outcome);
        failed.push({ name: slot.hook.name, error: slot.error });
      }
    }
    this.#running = false;
    return { timedOut, failed };
  }

  /** True between `start` and the end of `stop`. */
  get running(): boolean {
    return this.#running;
  }
}
