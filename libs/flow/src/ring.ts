/**
 * The most recent `capacity` items, oldest overwritten first (Hubble's flow ring: 4095 by
 * default). Constant time per push, no allocation after it fills.
 */
export class FlowRing<T> {
  readonly capacity: number;
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  /** Items oldest first, each passing `keep`. */
  *values(keep: (item: T) => boolean = () => true): Generator<T> {
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) {
      const item = this.#items[(start + i) % this.capacity]!;
      if (keep(item)) yield item;
    }
  }

  /** The last `n` items passing `keep`, oldest first (newest last). */
  last(n: number, keep: (item: T) => boolean = () => true): T[] {
    const out: T[] = [];
    for (let i = 1; i <= this.#size && out.length < n; i++) {
      const item = this.#items[(this.#next - i + this.capacity * 2) % this.capacity]!;
      if (keep(item)) out.push(item);
    }
    return out.reverse();
  }
}
