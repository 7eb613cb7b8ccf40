#!/usr/bin/env node
// The test-run floor: what BPF_PROG_TEST_RUN costs for a program that does nothing. Later
// per-packet benchmarks divide by this. Kernel-measured ns/run (repeat) is the baseline; the
// JS round trip (one syscall through the addon per run) is shown against it.
// usage: node test/bench/bpf-testrun.mjs   (needs root and `nx run-many -t build`)
import { BpfObject } from '@cilia/bpf';
import { compileBpf, packet } from '@cilia/bpf/testing';

const obj = BpfObject.open(compileBpf('pass'));
obj.load();
const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).payload(Buffer.alloc(18)).build();

try {
  console.log(`test run of a trivial program, ${frame.length}-byte frame`);
  for (const name of ['cls_pass', 'xdp_pass']) {
    const prog = obj.program(name);
    prog.testRun({ data: frame, repeat: 100_000 }); // warm-up
    const inKernel = prog.testRun({ data: frame, repeat: 1_000_000 }).duration;
    const calls = 100_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) prog.testRun({ data: frame });
    const roundTrip = Number(process.hrtime.bigint() - t0) / calls;
    console.log(
      `  ${name.padEnd(9)} in kernel ${String(inKernel).padStart(4)} ns/run (baseline, repeat 1M)   ` +
        `from JS ${roundTrip.toFixed(0).padStart(5)} ns/call   ×${(roundTrip / Math.max(inKernel, 1)).toFixed(1)} vs baseline`,
    );
  }
} finally {
  obj.close();
}
