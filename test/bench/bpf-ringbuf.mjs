#!/usr/bin/env node
// Ring-buffer records per second delivered to JS and decoded, produced by a BPF program
// (bpf/tests/ringbuf.c, 1000 records per run) driven by test-run repeat on a worker thread
// while the event loop consumes. Baseline: the same delivery without decoding. Lost
// records (producer found the ring full) are counted and must be 0.
// usage: node test/bench/bpf-ringbuf.mjs [records]   (needs root and `nx run-many -t build`)
import { BpfObject, RingBufferConsumer, codec } from '@cilia/bpf';
import { compileBpf, makePinRoot, packet, removePinRoot } from '@cilia/bpf/testing';

const TOTAL = Number(process.argv[2] ?? 4_000_000);
const PER_RUN = 1000;
const CHUNK_RUNS = 100; // 100k records per test run call; the 16 MiB ring holds ~350k
const EventHeader = codec.struct('cilia_event_hdr', {
  type: codec.u8,
  subtype: codec.u8,
  source: codec.u16,
  ifindex: codec.u32,
  tsNs: codec.u64,
});
const TestEvent = codec.struct('test_event', { hdr: EventHeader, seq: codec.u64n, cpu: codec.u32, mark: codec.u32 });
const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).build();

async function run(label, decode) {
  const pinRoot = makePinRoot('bench');
  const obj = BpfObject.open(compileBpf('ringbuf'), { pinRoot, constants: { records_per_run: PER_RUN } });
  let consumer;
  try {
    obj.load();
    let delivered = 0;
    let checksum = 0;
    consumer = new RingBufferConsumer(obj.map('cilia_events'), {
      lostCounter: obj.perCpuMap('cilia_events_lost', { key: codec.u32, value: codec.u64n }),
      batchBytes: 4 << 20,
      onBatch: decode
        ? (batch) => {
            for (const ev of batch.decode(TestEvent)) checksum += ev.seq;
            delivered += batch.count;
          }
        : (batch) => {
            delivered += batch.count;
          },
    });
    const prog = obj.program('cls_emit');
    const chunk = PER_RUN * CHUNK_RUNS;
    const t0 = process.hrtime.bigint();
    let produced = 0;
    while (produced < TOTAL) {
      // Keep at most two chunks in the ring: pace the producer to what the consumer takes.
      while (produced - delivered > chunk) await new Promise((r) => setImmediate(r));
      await prog.testRunAsync({ data: frame, repeat: CHUNK_RUNS });
      produced += chunk;
    }
    while (delivered + consumer.stats().lost < produced) await new Promise((r) => setImmediate(r));
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const stats = consumer.stats();
    if (decode && checksum === 0) throw new Error('decoded nothing');
    return { label, perSecond: delivered / s, lost: stats.lost, batches: stats.batches, delivered };
  } finally {
    consumer?.close();
    obj.close();
    removePinRoot(pinRoot);
  }
}

const base = await run('delivered, count only (baseline)', false);
const decoded = await run('delivered and decoded', true);
console.log(`ring buffer → JS, ${TOTAL} records of ${TestEvent.size} B`);
for (const r of [base, decoded]) {
  console.log(
    `  ${r.label.padEnd(34)} ${(r.perSecond / 1e6).toFixed(2).padStart(5)} M records/s   ` +
      `lost ${r.lost}   ${r.batches} batches   ×${(r.perSecond / base.perSecond).toFixed(2)} vs baseline`,
  );
}
if (base.lost || decoded.lost) process.exitCode = 1;
