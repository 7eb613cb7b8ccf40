// Program arrays: the tail-call tables through which base programs reach the slots plugins
// fill. Writing a slot swaps the program atomically for the next packet.
import { u32 } from './codec.js';
import type { BpfMap } from './map.js';

interface Program {
  readonly fd: number;
  readonly id: number;
  readonly name: string;
}

/** A `BPF_MAP_TYPE_PROG_ARRAY` map, by slot number. */
export class ProgramArray {
  constructor(private readonly map: BpfMap<number, number>) {
    if (map.info.type !== 3) throw new TypeError(`map '${map.info.name}' is not a program array`);
  }

  /** Number of slots (the map's max_entries). */
  get size(): number {
    return this.map.info.maxEntries;
  }

  private check(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.size) {
      throw new RangeError(`program array '${this.map.info.name}': slot ${slot} is outside 0..${this.size - 1}`);
    }
  }

  /** Installs `program` in `slot` (replacing what was there). */
  set(slot: number, program: Program): void {
    this.check(slot);
    this.map.update(slot, program.fd);
  }

  /** Empties `slot`, so callers fall through; false if it was empty. */
  clear(slot: number): boolean {
    this.check(slot);
    return this.map.delete(slot);
  }

  /** Kernel id of the program in `slot`, undefined when empty. */
  get(slot: number): number | undefined {
    this.check(slot);
    return this.map.lookup(slot);
  }
}

/** @internal codecs of a program array's key and value. */
export const PROG_ARRAY_CODECS = { key: u32, value: u32 } as const;
