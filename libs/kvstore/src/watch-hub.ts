import type { KvEvent, Logger, Unsubscribe } from '@cilia/core';
import { KvCompactedError } from './errors.js';

interface Watcher {
  readonly prefix: string;
  readonly listener: (event: KvEvent) => void;
  /** Only events above this revision are delivered: the resume point. */
  readonly after: number;
  readonly queue: KvEvent[];
  ready: boolean;
  closed: boolean;
}

function keyOf(event: KvEvent): string {
  return event.type === 'put' ? event.entry.key : event.key;
}

/**
 * Fans committed events out to prefix watchers and keeps a bounded history so a watcher can
 * resume from a past revision without missing or repeating an event.
 */
export class WatchHub {
  readonly #history: KvEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  /** Every event above this revision is still in the history. */
  #floor: number;

  constructor(
    floor: number,
    private readonly limit: number,
    private readonly logger: Logger | undefined,
  ) {
    this.#floor = floor;
  }

  /** The oldest revision a watch may resume from. */
  get floor(): number {
    return this.#floor;
  }

  /** Records committed events (in revision order) and hands them to the matching watchers. */
  publish(events: readonly KvEvent[]): void {
    for (const event of events) {
      this.#history.push(event);
      for (const w of this.#watchers) {
        if (event.revision > w.after && keyOf(event).startsWith(w.prefix)) {
          w.queue.push(event);
          if (w.ready) this.#drain(w);
        }
      }
    }
    this.#trim();
  }

  /**
   * Registers a watcher. `after` is the revision after which events are wanted; the events
   * already in the history are delivered first, asynchronously, then live ones.
   */
  watch(prefix: string, listener: (event: KvEvent) => void, after: number): Unsubscribe {
    if (after < this.#floor) throw new KvCompactedError(after, this.#floor);
    const backlog = this.#history.filter((e) => e.revision > after && keyOf(e).startsWith(prefix));
    const watcher: Watcher = { prefix, listener, after, queue: backlog, ready: false, closed: false };
    this.#watchers.add(watcher);
    // Deliver the backlog after `watch` returns, so the caller holds its Unsubscribe first.
    queueMicrotask(() => {
      watcher.ready = true;
      this.#drain(watcher);
    });
    return () => {
      watcher.closed = true;
      watcher.queue.length = 0;
      this.#watchers.delete(watcher);
    };
  }

  /** Drops every watcher (the store is closing). */
  clear(): void {
    for (const w of this.#watchers) w.closed = true;
    this.#watchers.clear();
  }

  #drain(w: Watcher): void {
    while (!w.closed && w.queue.length > 0) {
      const event = w.queue.shift()!;
      try {
        w.listener(event);
      } catch (err) {
        this.logger?.error({ err, prefix: w.prefix, revision: event.revision }, 'KvStore watch listener threw; the watch continues');
      }
    }
  }

  #trim(): void {
    if (this.#history.length <= this.limit) return;
    let cut = this.#history.length - this.limit;
    // Never split a revision (a lease revoke deletes several keys at one revision).
    const floor = this.#history[cut - 1]!.revision;
    while (cut < this.#history.length && this.#history[cut]!.revision === floor) cut++;
    this.#history.splice(0, cut);
    this.#floor = floor;
  }
}
