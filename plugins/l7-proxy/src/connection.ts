import { Socket } from 'node:net';
import type { Direction, L7AccessLogRecord } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { openTcpSocket } from '@cilia/netlink';

/** One end of a proxied connection. */
export interface ProxyPeer {
  readonly ip: string;
  readonly port: number;
  readonly identity: number;
}

/**
 * A connection the datapath handed to the proxy: who is talking to whom (the destination is
 * the original one, the transparent socket's local address), on behalf of which endpoint and
 * direction, and the rules that apply to it (looked up per request: a policy change applies to
 * the next request of a live connection).
 */
export interface ProxiedConnection {
  readonly socket: Socket;
  readonly direction: Direction;
  readonly endpointId: number;
  readonly source: ProxyPeer;
  readonly destination: ProxyPeer;
  /** The rules (in the parser's shape) for this peer, now; undefined when none cover the connection any more. */
  rules(): readonly unknown[] | undefined;
  /** A socket to the original destination, marked with the source's identity (not yet connected when returned). */
  connectUpstream(): Socket;
  /** Reports one request's decision (an access log record, an L7 flow). */
  log(record: Omit<L7AccessLogRecord, 'time' | 'source' | 'destination'> & { time?: Date }): void;
}

/** How one protocol serves the connections of its listeners. */
export interface ProtocolHandler {
  readonly name: string;
  handle(conn: ProxiedConnection): void;
  close?(): void;
}

/** The SO_MARK of an upstream connection carrying `identity`; a local CIDR identity (beyond 24 bits) goes as world. */
export function fromProxyMarkOf(identity: number): number {
  return datapathMaps.fromProxyMark(identity > 0xffffff ? 2 : identity);
}

/** A TCP connection to `dest` whose packets carry the proxy mark of `identity`. */
export function markedConnection(dest: { ip: string; port: number }, identity: number): Socket {
  const socket = new Socket({ fd: openTcpSocket({ mark: fromProxyMarkOf(identity) }), readable: true, writable: true });
  socket.connect(dest.port, dest.ip);
  return socket;
}
