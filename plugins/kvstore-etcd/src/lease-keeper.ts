import type { Logger } from '@cilia/core';
import type { Etcd3, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IDuplexStream } from 'etcd3';

interface Kept {
  readonly ttl: number;
  next: number;
}

/**
 * Keeps leases alive over one keep-alive stream, refreshing each at a third of its TTL. A
 * broken stream is reopened on the next tick, so keep-alives resume once etcd is back; a
 * lease etcd reports gone (TTL ≤ 0) is dropped and logged.
 */
export class LeaseKeeper {
  readonly #leases = new Map<number, Kept>();
  readonly #timer: NodeJS.Timeout;
  #stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  #opening = false;

  constructor(
    private readonly client: Etcd3,
    private readonly logger: Logger | undefined,
  ) {
    this.#timer = setInterval(() => this.#tick(), 250);
    this.#timer.unref();
  }

  add(id: number, ttlSeconds: number): void {
    this.#leases.set(id, { ttl: ttlSeconds, next: Date.now() + (ttlSeconds * 1000) / 3 });
  }

  remove(id: number): void {
    this.#leases.delete(id);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#leases.clear();
    this.#stream?.end();
    this.#stream = undefined;
  }

  #tick(): void {
    const now = Date.now();
    const due = [...this.#leases].filter(([, l]) => l.next <= now);
    if (due.length === 0) return;
    if (!this.#stream) {
      this.#open();
      return;
    }
    for (const [id, lease] of due) {
      lease.next = now + (lease.ttl * 1000) / 3;
      this.#stream.write({ ID: id });
    }
  }

  #open(): void {
    if (this.#opening) return;
    this.#opening = true;
    this.client.leaseClient
      .leaseKeepAlive()
      .then((stream) => {
        this.#stream = stream;
        stream.on('data', (res: ILeaseKeepAliveResponse) => {
          if (Number(res.TTL) <= 0 && this.#leases.delete(Number(res.ID))) {
            this.logger?.error({ lease: Number(res.ID) }, 'etcd lease expired before it could be kept alive; its keys are gone');
          }
        });
        const broken = (err?: Error): void => {
          if (this.#stream === stream) this.#stream = undefined;
          if (err) this.logger?.warn({ err: err.message }, 'etcd lease keep-alive stream broke; reopening');
        };
        stream.on('error', broken);
        stream.on('end', () => broken());
      })
      .catch((err: Error) => this.logger?.warn({ err: err.message }, 'cannot open the etcd lease keep-alive stream; retrying'))
      .finally(() => {
        this.#opening = false;
      });
  }
}
