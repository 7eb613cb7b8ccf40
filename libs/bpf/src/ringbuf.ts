// Ring-buffer consumer: the addon polls the ring's epoll fd on the libuv loop and hands JS
// whole batches; this side walks a batch without copying and counts what the producer lost.
import { toBpfError } from './errors.js';
import type { BpfMap } from './map.js';
import { PerCpuMap } from './map.js';
import { native, type NativeRingBuffer } from './native.js';
import type { Codec } from './codec.js';

/** A batch of records, valid only during the callback (its buffer is reused). */
export interface RecordBatch {
  readonly count: number;
  /** Calls `fn(buf, offset, length)` for each record; `buf` is shared, copy what you keep. */
  forEach(fn: (buf: Buffer, offset: number, length: number) => void): void;
  /** Decodes every record with `codec` (records shorter than the codec are skipped). */
  decode<T>(codec: Codec<T>): T[];
}

export interface RingBufferOptions {
  /**
   * Called once per batch, on the event loop. An exception thrown here surfaces as an
   * uncaught exception (`process.on('uncaughtException')`), like one from any I/O callback.
   */
  readonly onBatch: (batch: RecordBatch) => void;
  /**
   * The producer's per-CPU counter of records it could not reserve (bpf/lib/events.h keeps
   * it in `cilia_events_lost`, key 0). When given, `stats().lost` reports it.
   */
  readonly lostCounter?: PerCpuMap<number, number>;
  /** Bytes of the batch buffer (default 1 MiB). */
  readonly batchBytes?: number;
  /**
   * Records one wakeup of the event loop delivers at most (default: every record there is). A
   * producer faster than the consumer would otherwise keep the loop draining, and nothing else
   * (timers, sockets) would run; with a bound the rest is read on the next turn of the loop.
   */
  readonly maxRecordsPerWakeup?: number;
}

export interface RingBufferStats {
  /** Records delivered to JS. */
  readonly records: number;
  readonly batches: number;
  /** Records the producer dropped for lack of room (from the lost counter; 0 without one). */
  readonly lost: number;
  /** Records larger than the batch buffer, skipped. */
  readonly oversized: number;
}

class Batch implements RecordBatch {
  buf: Buffer = Buffer.alloc(0);
  bytes = 0;
  count = 0;

  forEach(fn: (buf: Buffer, offset: number, length: number) => void): void {
    const buf = this.buf;
    let at = 0;
    while (at < this.bytes) {
      const len = buf.readUInt32LE(at);
      fn(buf, at + 8, len);
      at += 8 + ((len + 7) & ~7);
    }
  }

  decode<T>(codec: Codec<T>): T[] {
    const out: T[] = [];
    this.forEach((buf, offset, length) => {
      if (length >= codec.size) out.push(codec.decode(buf, offset));
    });
    return out;
  }
}

/**
 * Consumes a BPF ring buffer map on the event loop. No busy polling: the loop wakes when the
 * kernel signals data, drains everything available and delivers it in as few calls as fit
 * the batch buffer.
 */
export class RingBufferConsumer {
  private handle: NativeRingBuffer | undefined;
  private readonly lostCounter: PerCpuMap<number, number> | undefined;
  private readonly batch = new Batch();

  constructor(map: BpfMap<unknown, unknown>, options: RingBufferOptions) {
    if (map.info.type !== 27) throw new TypeError(`map '${map.info.name}' is not a ring buffer`);
    if (options.lostCounter && !(options.lostCounter instanceof PerCpuMap)) {
      throw new TypeError('lostCounter must be a per-CPU map');
    }
    this.lostCounter = options.lostCounter;
    const onBatch = options.onBatch;
    const batch = this.batch;
    try {
      this.handle = new (native().NativeRingBuffer)(
        map.fd,
        (buf, bytes, count) => {
          batch.buf = buf;
          batch.bytes = bytes;
          batch.count = count;
          onBatch(batch);
        },
        options.batchBytes,
        options.maxRecordsPerWakeup,
      );
      this.handle.start();
    } catch (err) {
      throw toBpfError(err, `ring buffer '${map.info.name}'`);
    }
  }

  /** Drains what is in the ring now, synchronously; returns the number of records. */
  consume(): number {
    if (!this.handle) throw new Error('ring buffer consumer is closed');
    return this.handle.consume();
  }

  stats(): RingBufferStats {
    const s = this.handle?.stats() ?? { records: 0, batches: 0, oversized: 0, lastErrno: 0 };
    const lost = this.lostCounter?.sum(0) ?? 0;
    return { records: s.records, batches: s.batches, oversized: s.oversized, lost };
  }

  /** Stops polling and frees the consumer. */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }
}
