import { NetlinkError, toNetlinkError } from './errors.js';
import { native } from './native.js';
import { type Message, type MessageWriter, splitMessages } from './wire.js';

/** A dump the kernel flagged as interrupted (the set changed meanwhile) is asked again this often. */
const DUMP_ATTEMPTS = 5;

/**
 * One NETLINK_ROUTE socket. Requests are serialised: each waits for the previous one's
 * replies, which keeps replies of different requests from interleaving on the socket.
 */
export class RouteSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private tail: Promise<unknown> = Promise.resolve();
  private fd: number | undefined;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens a socket in the namespace at `netnsPath`, or in this process's namespace. */
  static async open(netnsPath?: string): Promise<RouteSocket> {
    try {
      return new RouteSocket(await native().openSocket(netnsPath ?? null));
    } catch (err) {
      throw toNetlinkError(err, 'netlink open', netnsPath ?? 'current netns');
    }
  }

  /**
   * Sends a request (NLM_F_ACK is expected among its flags) and resolves with its replies;
   * errors become NetlinkError naming `operation` and `object`.
   */
  request(writer: MessageWriter, operation: string, object: string): Promise<Message[]> {
    const run = async (): Promise<Message[]> => {
      if (this.fd === undefined) {
        throw new NetlinkError(operation, object, 9, 'EBADF', 'netlink handle is closed');
      }
      this.seq = (this.seq + 1) >>> 0;
      try {
        return splitMessages(await native().transact(this.fd, writer.finish(this.seq), this.seq));
      } catch (err) {
        throw toNetlinkError(err, operation, object);
      }
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Like request, for NLM_F_DUMP requests: asks again when the kernel says the dump was interrupted. */
  async dump(writer: MessageWriter, operation: string, object: string): Promise<Message[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request(writer, operation, object);
      } catch (err) {
        if (!(err instanceof NetlinkError && err.code === 'EINTR') || attempt >= DUMP_ATTEMPTS) throw err;
      }
    }
  }

  /** Closes the socket once requests already queued have finished. */
  async close(): Promise<void> {
    await this.tail;
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    native().closeSocket(fd);
  }
}
