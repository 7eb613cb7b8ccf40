// Reads the datapath's events ring buffer (`<bpfRoot>/cilia_events`) on the event loop and
// turns every record into a flow. The datapath pins the ring when it loads its base objects,
// which it does lazily (with the first endpoint): until the pin is there the reader looks for
// it once a second. Records wait in the ring meanwhile, so none is missed.
import { join } from 'node:path';
import { BpfError, BpfMap, PerCpuMap, RingBufferConsumer, codec } from '@cilia/bpf';
import type { Logger } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { buildFlow, MonotonicClock } from './build.js';
import type { Enricher } from './enrich.js';
import type { FlowObserver } from './observer.js';
import { decodeRecord, recordScratch } from './records.js';

export interface DatapathReaderOptions {
  readonly pinRoot: string;
  readonly observer: FlowObserver;
  readonly enricher: Enricher;
  readonly logger: Logger;
  /** How often the pin is looked for and the lost counter read (ms). Default 1000. */
  readonly pollMs?: number;
}

export class DatapathEventReader {
  readonly #o: DatapathReaderOptions;
  readonly #clock = new MonotonicClock();
  readonly #scratch = recordScratch();
  #consumer?: RingBufferConsumer;
  #ring?: BpfMap;
  #lostMap?: PerCpuMap<number, number>;
  #lostSeen = 0;
  #timer?: NodeJS.Timeout;

  constructor(options: DatapathReaderOptions) {
    this.#o = options;
  }

  start(): void {
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), this.#o.pollMs ?? 1000);
    this.#timer.unref();
  }

  /** Whether the ring buffer is being read. */
  get attached(): boolean {
    return this.#consumer !== undefined;
  }

  /** Drains what the ring holds now (tests, shutdown). */
  drain(): number {
    return this.#consumer?.consume() ?? 0;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#consumer?.close();
    this.#ring?.close();
    this.#lostMap?.close();
    this.#consumer = this.#ring = this.#lostMap = undefined;
  }

  #tick(): void {
    if (!this.#consumer) this.#attach();
    this.#checkLost();
  }

  #attach(): void {
    const { pinRoot, observer, enricher, logger } = this.#o;
    let ring: BpfMap;
    try {
      ring = BpfMap.openPinned(join(pinRoot, datapathMaps.MapName.events));
    } catch (err) {
      if (err instanceof BpfError && err.code === 'ENOENT') return;
      logger.warn({ err: (err as Error).message }, 'cannot open the events ring buffer; retrying');
      return;
    }
    try {
      this.#lostMap = PerCpuMap.openPinnedPerCpu(join(pinRoot, datapathMaps.MapName.eventsLost), { key: codec.u32, value: codec.u64n });
      // Losses before this agent started are not this agent's to report.
      this.#lostSeen = this.#lostMap.sum(0) ?? 0;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot open the events lost counter; lost records go unreported');
    }
    const ctx = { node: observer.node, enricher, clock: this.#clock };
    const scratch = this.#scratch;
    this.#ring = ring;
    this.#consumer = new RingBufferConsumer(ring as BpfMap<unknown, unknown>, {
      onBatch: (batch) => {
        batch.forEach((buf, offset, length) => {
          const record = decodeRecord(buf, offset, length, scratch);
          if (record) observer.publish(buildFlow(record, ctx));
          else observer.unknownRecord();
        });
      },
      batchBytes: 1 << 20,
      // A storm keeps the ring full: read it in turns, so the API and timers run in between.
      maxRecordsPerWakeup: 4096,
    });
    logger.info({ map: join(pinRoot, datapathMaps.MapName.events) }, 'reading datapath events');
  }

  #checkLost(): void {
    if (!this.#lostMap) return;
    const now = this.#lostMap.sum(0) ?? 0;
    if (now > this.#lostSeen) this.#o.observer.lostInDatapath(now - this.#lostSeen);
    this.#lostSeen = now;
  }
}
