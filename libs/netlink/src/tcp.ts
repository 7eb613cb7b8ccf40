import { NetlinkInputError } from './errors.js';
import { native } from './native.js';

/** Options Node's net module cannot set on a TCP socket. */
export interface TcpSocketOptions {
  /** IP_TRANSPARENT: accept connections to, and send from, addresses that are not this host's. */
  transparent?: boolean;
  /** SO_MARK: the mark every packet of the socket carries (0: none). */
  mark?: number;
  /** Bind and listen on this IPv4 address and port (a listener); otherwise the socket is left unconnected. */
  listen?: { address: string; port: number; backlog?: number };
}

/**
 * A non-blocking IPv4 TCP socket's descriptor, configured before any packet leaves: hand a
 * listener to `net.Server#listen({ fd })`, a client to `new net.Socket({ fd }).connect(...)`.
 * Throws an Error with `errno`/`code`/`syscall` naming the step that failed.
 */
export function openTcpSocket(options: TcpSocketOptions = {}): number {
  const mark = options.mark ?? 0;
  if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new NetlinkInputError('mark', `${mark} is not a 32-bit mark`);
  const l = options.listen;
  if (l && (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535)) throw new NetlinkInputError('listen.port', `${l.port} is not a port (0-65535)`);
  return native().openTcpSocket(options.transparent ?? false, mark, l?.address ?? null, l?.port ?? 0, l?.backlog ?? 511);
}
