import { afterEach, describe, expect, it } from 'vitest';
import { u32, u64n } from './codec.js';
import { TEST_EVENT_HDR, TestEvent } from './testing/fixtures.js';
import { BpfObject } from './object.js';
import { RingBufferConsumer } from './ringbuf.js';
import { compileBpf, makePinRoot, packet, removePinRoot, skbContext } from './testing/index.js';


const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()?.();
});

function producer(recordsPerRun: number, ringBytes?: number): BpfObject {
  const pinRoot = makePinRoot('rb');
  cleanups.push(() => removePinRoot(pinRoot));
  const obj = BpfObject.open(compileBpf('ringbuf'), { pinRoot, constants: { records_per_run: recordsPerRun } });
  cleanups.push(() => obj.close());
  if (ringBytes) obj.setMaxEntries('cilia_events', ringBytes);
  obj.load();
  return obj;
}

const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).build();

describe('RingBufferConsumer', () => {
  it('delivers records to JS in batches through the event loop', async () => {
    const obj = producer(100);
    const seen: Array<{ seq: number; cpu: number; mark: number; type: number; source: number }> = [];
    let batches = 0;
    const consumer = new RingBufferConsumer(obj.map('cilia_events'), {
      lostCounter: obj.perCpuMap('cilia_events_lost', { key: u32, value: u64n }),
      onBatch: (batch) => {
        batches++;
        for (const ev of batch.decode(TestEvent)) {
          seen.push({ seq: ev.seq, cpu: ev.cpu, mark: ev.mark, type: ev.hdr.type, source: ev.hdr.source });
        }
      },
    });
    cleanups.push(() => consumer.close());

    // The program runs on a worker thread; the consumer wakes on the loop without being asked.
    await obj.program('cls_emit').testRunAsync({ data: frame, ctx: skbContext({ mark: 42 }), repeat: 10 });
    for (let i = 0; i < 100 && seen.length < 1000; i++) await new Promise((r) => setTimeout(r, 10));

    expect(seen).toHaveLength(1000);
    expect(seen.every((e) => e.mark === 42 && e.type === TEST_EVENT_HDR.type && e.source === TEST_EVENT_HDR.source)).toBe(true);
    // Per-CPU sequences: each CPU's numbers arrive complete and in order.
    const byCpu = new Map<number, number[]>();
    for (const e of seen) byCpu.set(e.cpu, [...(byCpu.get(e.cpu) ?? []), e.seq]);
    for (const seqs of byCpu.values()) expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThan(1000); // batched, not one call per record
    expect(consumer.stats()).toMatchObject({ records: 1000, lost: 0, oversized: 0 });
  });

  it('counts records the producer lost to a full ring', () => {
    const obj = producer(1000, 4096); // 1000 records of 48 bytes cannot fit in 4 KiB
    let delivered = 0;
    const consumer = new RingBufferConsumer(obj.map('cilia_events'), {
      lostCounter: obj.perCpuMap('cilia_events_lost', { key: u32, value: u64n }),
      onBatch: (batch) => (delivered += batch.count),
    });
    cleanups.push(() => consumer.close());

    obj.program('cls_emit').testRun({ data: frame }); // synchronous: nothing drains meanwhile
    expect(consumer.consume()).toBe(delivered);
    const stats = consumer.stats();
    expect(delivered).toBeGreaterThan(0);
    expect(stats.lost).toBeGreaterThan(0);
    expect(delivered + stats.lost).toBe(1000);
    expect(stats.records).toBe(delivered);
  });

  it('with maxRecordsPerWakeup, delivers a full ring over several turns of the event loop, timers running between them', async () => {
    const obj = producer(1000);
    const turns: number[] = [];
    let timerRan = 0;
    let delivered = 0;
    const consumer = new RingBufferConsumer(obj.map('cilia_events'), {
      maxRecordsPerWakeup: 256,
      onBatch: (batch) => {
        delivered += batch.count;
        turns.push(timerRan);
      },
    });
    cleanups.push(() => consumer.close());
    obj.program('cls_emit').testRun({ data: frame, repeat: 10 }); // 10 000 records wait in the ring
    const ticker = setInterval(() => timerRan++, 0);
    try {
      for (let i = 0; i < 500 && delivered < 10_000; i++) await new Promise((r) => setTimeout(r, 5));
    } finally {
      clearInterval(ticker);
    }
    expect(delivered).toBe(10_000);
    expect(turns.length).toBeGreaterThanOrEqual(10_000 / 256);
    // The timer ran between wakeups: the drain did not hold the loop for the whole ring.
    expect(new Set(turns).size).toBeGreaterThan(1);
    expect(consumer.stats()).toMatchObject({ records: 10_000, lost: 0 });
  });

  it('walks raw records and refuses maps that are not ring buffers', () => {
    const obj = producer(3);
    const lengths: number[] = [];
    const consumer = new RingBufferConsumer(obj.map('cilia_events'), {
      onBatch: (batch) => batch.forEach((_buf, _offset, length) => lengths.push(length)),
    });
    cleanups.push(() => consumer.close());
    obj.program('cls_emit').testRun({ data: frame });
    consumer.consume();
    expect(lengths).toEqual([TestEvent.size, TestEvent.size, TestEvent.size]);
    expect(consumer.stats().lost).toBe(0); // no lost counter given: reported as 0
    expect(() => new RingBufferConsumer(obj.perCpuMap('seq') as never, { onBatch: () => {} })).toThrow(/not a ring buffer/);
    consumer.close();
    expect(() => consumer.consume()).toThrow(/closed/);
  });
});
