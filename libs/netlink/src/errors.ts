/**
 * A kernel refusal. The message says what was attempted on which object and why, e.g.
 * `link add veth lxc1234: File exists (EEXIST)`.
 */
export class NetlinkError extends Error {
  /** Positive errno, e.g. 17. */
  readonly errno: number;
  /** errno name, e.g. `EEXIST`. */
  readonly code: string;
  /** The operation, e.g. `link add veth`. */
  readonly operation: string;
  /** The object it was applied to, e.g. `lxc1234`. */
  readonly object: string;
  /** The kernel's own explanation (netlink extended ACK), when it gave one. */
  readonly kernelMessage: string | undefined;

  constructor(
    operation: string,
    object: string,
    errno: number,
    code: string,
    description: string,
    kernelMessage?: string,
    cause?: unknown,
  ) {
    const where = object ? `${operation} ${object}` : operation;
    const extra = kernelMessage ? ` — kernel: ${kernelMessage}` : '';
    super(`${where}: ${description} (${code})${extra}`, cause === undefined ? undefined : { cause });
    this.name = 'NetlinkError';
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.object = object;
    this.kernelMessage = kernelMessage;
  }
}

/**
 * A reply message that does not have the shape its type promises (shorter than its family
 * header, an address attribute of the wrong length). The kernel does not send such messages; a
 * parser meeting one says so instead of reading past the end.
 */
export class NetlinkParseError extends Error {
  constructor(
    readonly messageKind: string,
    reason: string,
  ) {
    super(`malformed netlink ${messageKind} message: ${reason}`);
    this.name = 'NetlinkParseError';
  }
}

/** Bad input, caught before anything reached the kernel; `field` names the offending argument. */
export class NetlinkInputError extends TypeError {
  readonly field: string;

  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'NetlinkInputError';
    this.field = field;
  }
}

interface NativeErrorShape {
  message: string;
  errno?: number;
  code?: string;
  extack?: string;
}

/** Turns an addon error into a NetlinkError naming `operation` and `object`; others pass through. */
export function toNetlinkError(err: unknown, operation: string, object: string): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & NativeErrorShape;
  if (typeof e.errno !== 'number' || typeof e.code !== 'string') return err;
  return new NetlinkError(operation, object, e.errno, e.code, e.message, e.extack, err);
}
