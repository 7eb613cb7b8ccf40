/** Runs tasks one at a time, in the order they were queued; a failed task does not hold up the next. */
export class SerialQueue {
  #tail: Promise<void> = Promise.resolve();

  /** Queues `task`; `onError` gets what it throws. */
  push(task: () => Promise<void>, onError: (err: unknown) => void): void {
    this.#tail = this.#tail.then(task).catch(onError);
  }

  /** Resolves once every task queued so far, and any queued meanwhile, has run. */
  async settled(): Promise<void> {
    let current;
    do {
      current = this.#tail;
      await current;
    } while (current !== this.#tail);
  }
}
