/** Error from the kernel or libbpf: `errno`/`code` say what failed, the message says where. */
export class BpfError extends Error {
  /** Positive errno, e.g. 13. */
  readonly errno: number;
  /** errno name, e.g. `EACCES`. */
  readonly code: string;
  /** Program the verifier refused, when a load failed in the verifier. */
  readonly program: string | undefined;
  /** Last part of the verifier log (what it refused and why), when a program failed to load. */
  readonly verifierLog: string | undefined;

  constructor(
    message: string,
    errno: number,
    code: string,
    extra: { program?: string; verifierLog?: string; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'BpfError';
    this.errno = errno;
    this.code = code;
    this.program = extra.program;
    this.verifierLog = extra.verifierLog;
  }
}

interface NativeErrorShape {
  message: string;
  errno?: number;
  code?: string;
  program?: string | null;
  verifierLog?: string;
  libbpfLog?: string;
}

/** Turns an addon error into a BpfError (other errors pass through), prefixing `context`. */
export function toBpfError(err: unknown, context?: string): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & NativeErrorShape;
  if (typeof e.errno !== 'number' || typeof e.code !== 'string') return err;
  let message = context ? `${context}: ${e.message}` : e.message;
  if (e.verifierLog) message += `\nverifier log (tail):\n${e.verifierLog.trimEnd()}`;
  else if (e.libbpfLog?.trim()) message += `\nlibbpf: ${e.libbpfLog.trim()}`;
  return new BpfError(message, e.errno, e.code, {
    program: e.program ?? undefined,
    verifierLog: e.verifierLog || undefined,
    cause: err,
  });
}

/** Runs `fn`, rethrowing addon errors as BpfError. */
export function wrap<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (err) {
    throw toBpfError(err, context);
  }
}
