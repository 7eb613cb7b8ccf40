// Hubble's Observer gRPC API on the agent: a unix socket by default (as Cilium's
// unix:///var/run/cilium/hubble.sock), and optionally a TCP address, with TLS when a certificate
// is configured (and client certificates required when a client CA is). GetFlows streams
// buffered then followed flows with lost-event reports; ServerStatus and GetNodes answer from
// this node (and the cluster, through the relay, when there is one).
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Server, ServerCredentials, status as GrpcStatus, type ServerWritableStream, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger, NodeRegistry } from '@cilia/core';
import type { ClusterFlows, StreamItem } from './api.js';
import { compileRequest } from './filter.js';
import type { FlowObserver } from './observer.js';
import { flowToProto, lostToProto, observerService, requestFromProto, toTimestamp } from './proto.js';
import { streamFlows } from './stream.js';

export interface ObserverTls {
  readonly certFile: string;
  readonly keyFile: string;
  /** With it, clients must present a certificate this CA signed (mutual TLS). */
  readonly clientCaFile?: string;
}

export interface ObserverServerOptions {
  readonly observer: FlowObserver;
  readonly version: string;
  readonly logger: Logger;
  /** Path of the unix socket; empty: none. */
  readonly socketPath: string;
  /** `host:port`; empty: none. */
  readonly address: string;
  readonly tls?: ObserverTls;
  readonly nodes?: () => NodeRegistry | undefined;
  readonly cluster?: () => ClusterFlows | undefined;
  /** The port other nodes' observers listen on (GetNodes reports `<node ip>:<port>`). */
  readonly peerPort?: number;
}

/** The Observer service and the listeners it serves on. */
export class ObserverServer {
  readonly #o: ObserverServerOptions;
  readonly #server = new Server();
  /** `host:port` actually bound, when listening on TCP. */
  address?: string;

  constructor(options: ObserverServerOptions) {
    this.#o = options;
    const { service } = observerService();
    this.#server.addService(service, {
      GetFlows: (call: ServerWritableStream<Record<string, unknown>, unknown>) => this.#getFlows(call),
      ServerStatus: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => done(null, this.#status()),
      GetNodes: (_call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => done(null, { nodes: this.#nodes() }),
      // Cilia has no agent or debug events to stream yet: the stream ends at once.
      GetAgentEvents: (call: ServerWritableStream<unknown, unknown>) => call.end(),
      GetDebugEvents: (call: ServerWritableStream<unknown, unknown>) => call.end(),
    });
  }

  async start(): Promise<void> {
    const { socketPath, address, tls } = this.#o;
    if (socketPath) {
      mkdirSync(dirname(socketPath), { recursive: true });
      rmSync(socketPath, { force: true });
      await this.#bind(`unix://${socketPath}`, ServerCredentials.createInsecure());
      chmodSync(socketPath, 0o660);
    }
    if (address) {
      const creds = tls
        ? ServerCredentials.createSsl(tls.clientCaFile ? readFileSync(tls.clientCaFile) : null, [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }], tls.clientCaFile !== undefined)
        : ServerCredentials.createInsecure();
      const host = address.slice(0, address.lastIndexOf(':')) || '0.0.0.0';
      const port = await this.#bind(`${host}:${address.slice(address.lastIndexOf(':') + 1)}`, creds);
      this.address = `${host}:${port}`;
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    this.#server.forceShutdown();
    if (this.#o.socketPath) rmSync(this.#o.socketPath, { force: true });
  }

  #bind(target: string, creds: ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) => this.#server.bindAsync(target, creds, (err, port) => (err ? reject(new Error(`cannot serve the Observer API on ${target}: ${err.message}`)) : resolve(port))));
  }

  #getFlows(call: ServerWritableStream<Record<string, unknown>, unknown>): void {
    const { observer } = this.#o;
    let matches;
    let parsed;
    try {
      parsed = requestFromProto(call.request);
      matches = parsed.matchesNothing ? () => false : compileRequest(parsed.request);
    } catch (err) {
      const e = err as Error & { path?: string };
      const details = `${e.path ? `${e.path}: ` : ''}${e.message}`;
      call.emit('error', Object.assign(new Error(details), { code: GrpcStatus.INVALID_ARGUMENT, details }));
      return;
    }
    const { request } = parsed;
    const write = (item: StreamItem): boolean => {
      const node = 'flow' in item ? item.flow.node : (item.lostEvents.node ?? observer.node);
      const message = 'flow' in item
        ? { flow: flowToProto(item.flow), node_name: node, time: toTimestamp(item.flow.time) }
        : { lost_events: lostToProto(item.lostEvents), node_name: node, time: toTimestamp(new Date()) };
      return call.write(message);
    };
    const stop = streamFlows({
      observer,
      request,
      matches,
      remote: request.allNodes ? this.#o.cluster?.() : undefined,
      sink: { write, congested: () => call.writableLength > (1 << 20), end: () => call.end() },
    });
    call.on('cancelled', stop);
    call.on('close', stop);
  }

  #status(): Record<string, unknown> {
    const s = this.#o.observer.status();
    return {
      num_flows: s.numFlows,
      max_flows: s.maxFlows,
      seen_flows: s.seenFlows,
      uptime_ns: s.uptimeNs,
      num_connected_nodes: { value: 1 },
      num_unavailable_nodes: { value: 0 },
      version: this.#o.version,
    };
  }

  #nodes(): Record<string, unknown>[] {
    const s = this.#o.observer.status();
    const self = { name: s.node, version: this.#o.version, address: this.address ?? this.#o.socketPath, state: 'NODE_CONNECTED', tls: { enabled: this.#o.tls !== undefined, server_name: '' }, uptime_ns: s.uptimeNs, num_flows: s.numFlows, max_flows: s.maxFlows, seen_flows: s.seenFlows };
    const others = (this.#o.nodes?.()?.list() ?? [])
      .filter((n) => n.name !== s.node)
      .map((n) => ({ name: n.name, address: n.ipv4 && this.#o.peerPort ? `${n.ipv4}:${this.#o.peerPort}` : '', state: 'UNKNOWN_NODE_STATE' }));
    return [self, ...others];
  }
}
