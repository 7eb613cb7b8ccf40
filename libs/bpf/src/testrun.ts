// BPF_PROG_TEST_RUN: feed a program bytes (and/or a context) and read back its verdict,
// the packet it produced and how long it took.
import { toBpfError } from './errors.js';
import { native, type NativeTestRunSpec } from './native.js';

export interface TestRunOptions {
  /** Packet (or other input) bytes. tc programs need at least an Ethernet header (14 bytes). */
  readonly data?: Uint8Array;
  /** Capacity for the output packet; default: input size + 256 when `data` is given. */
  readonly dataOutSize?: number;
  /** Context in (e.g. a `struct __sk_buff` to set mark, ifindex, cb). */
  readonly ctx?: Uint8Array;
  /** Capacity for the context out; default: the size of `ctx`. */
  readonly ctxOutSize?: number;
  /** Run this many times (duration is then the mean per run, in ns). */
  readonly repeat?: number;
  /** BPF_F_TEST_RUN_ON_CPU etc. */
  readonly flags?: number;
  readonly cpu?: number;
}

export interface TestRunResult {
  /** The program's return value (e.g. TC_ACT_OK = 0, TC_ACT_SHOT = 2, XDP_PASS = 2). */
  readonly retval: number;
  /** Mean nanoseconds per run, as the kernel measured it. */
  readonly duration: number;
  /** The packet after the program ran (copy, `dataSizeOut` bytes). */
  readonly data: Buffer | undefined;
  readonly ctx: Buffer | undefined;
}

interface HasFd {
  readonly fd: number;
  readonly name: string;
}

function spec(options: TestRunOptions): { native: NativeTestRunSpec; dataOut?: Buffer; ctxOut?: Buffer } {
  const dataOut =
    options.data !== undefined || options.dataOutSize !== undefined
      ? Buffer.alloc(options.dataOutSize ?? (options.data?.length ?? 0) + 256)
      : undefined;
  const ctxOut =
    options.ctx !== undefined || options.ctxOutSize !== undefined
      ? Buffer.alloc(options.ctxOutSize ?? options.ctx?.length ?? 0)
      : undefined;
  return {
    native: {
      dataIn: options.data,
      dataOut,
      ctxIn: options.ctx,
      ctxOut,
      repeat: options.repeat,
      flags: options.flags,
      cpu: options.cpu,
    },
    dataOut,
    ctxOut,
  };
}

/** Runs `program` through BPF_PROG_TEST_RUN on this thread. */
export function testRun(program: HasFd, options: TestRunOptions = {}): TestRunResult {
  const s = spec(options);
  try {
    const r = native().testRun(program.fd, s.native);
    return {
      retval: r.retval,
      duration: r.duration,
      data: s.dataOut?.subarray(0, r.dataSizeOut),
      ctx: s.ctxOut?.subarray(0, r.ctxSizeOut),
    };
  } catch (err) {
    throw toBpfError(err, `test run of '${program.name}'`);
  }
}

/** Runs `program` through BPF_PROG_TEST_RUN on the libuv thread pool. */
export async function testRunAsync(program: HasFd, options: TestRunOptions = {}): Promise<TestRunResult> {
  const s = spec(options);
  try {
    const r = await native().testRunAsync(program.fd, s.native);
    return {
      retval: r.retval,
      duration: r.duration,
      data: s.dataOut?.subarray(0, r.dataSizeOut),
      ctx: s.ctxOut?.subarray(0, r.ctxSizeOut),
    };
  } catch (err) {
    throw toBpfError(err, `test run of '${program.name}'`);
  }
}
