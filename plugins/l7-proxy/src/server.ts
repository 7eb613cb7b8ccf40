import { createServer, type Server, type Socket } from 'node:net';
import type { Direction, L7AccessLogRecord, L7RuleSet, Logger, Unsubscribe } from '@cilia/core';
import { openTcpSocket } from '@cilia/netlink';
import { markedConnection, type ProtocolHandler, type ProxiedConnection, type ProxyPeer } from './connection.js';
import type { IdentityLookup } from './identities.js';

/** One listener: the port the datapath sends a parser's connections of one direction to. */
export interface ProxyListener {
  readonly parser: string;
  readonly direction: Direction;
  readonly port: number;
}

export interface L7ProxyServerOptions {
  readonly listeners: readonly ProxyListener[];
  readonly handlers: readonly ProtocolHandler[];
  readonly identities: IdentityLookup;
  readonly logger: Logger;
  /** Address the transparent listeners bind (the datapath assigns packets to them whatever their destination). */
  readonly address?: string;
}

/** Counters `cilia status` shows. */
export interface ProxyCounters {
  /** Connections accepted per listener port. */
  readonly redirected: Record<number, number>;
  readonly requests: { forwarded: number; denied: number; error: number };
  /** Connections closed at once: no endpoint or no rules for them. */
  readonly refused: number;
}

const tableKey = (endpointId: number, direction: Direction, port: number) => `${endpointId}/${direction}/${port}`;

/**
 * The transparent L7 proxy: a listener per (parser, direction) with IP_TRANSPARENT, fed by the
 * l7-redirect slot (bpf_sk_assign). For each accepted connection it finds the endpoint on
 * whose behalf it acts (the destination for ingress, the source for egress) and the peer's
 * identity from the datapath's own maps, and hands the connection to the parser's handler,
 * which asks for the rules of the moment per request. Independent of the agent's services:
 * it runs in the agent or in a process of its own.
 */
export class L7ProxyServer {
  readonly #rules = new Map<string, L7RuleSet>();
  /** Per key and peer identity: the peer's rules (its own and identity 0's), the same array until the set changes. */
  readonly #peerRules = new Map<string, Map<number, readonly unknown[] | undefined>>();
  readonly #servers: Server[] = [];
  readonly #listeners = new Set<(record: L7AccessLogRecord) => void>();
  readonly #handlers: Map<string, ProtocolHandler>;
  readonly #log: Logger;
  readonly #counters = { redirected: {} as Record<number, number>, requests: { forwarded: 0, denied: 0, error: 0 }, refused: 0 };

  constructor(private readonly options: L7ProxyServerOptions) {
    this.#handlers = new Map(options.handlers.map((h) => [h.name, h]));
    this.#log = options.logger;
  }

  get listeners(): readonly ProxyListener[] {
    return this.options.listeners;
  }

  counters(): ProxyCounters {
    return structuredClone(this.#counters);
  }

  redirectPort(parser: string, direction: Direction): number | undefined {
    return this.options.listeners.find((l) => l.parser === parser && l.direction === direction)?.port;
  }

  upsertRules(set: L7RuleSet): number {
    const port = this.redirectPort(set.parser, set.direction);
    if (port === undefined) throw new Error(`rules.${set.parser}: no ${set.direction} listener for parser ${set.parser}`);
    const key = tableKey(set.endpointId, set.direction, set.port);
    this.#rules.set(key, set);
    this.#peerRules.delete(key);
    return port;
  }

  removeRules(endpointId: number, direction: Direction, port: number): void {
    const key = tableKey(endpointId, direction, port);
    this.#rules.delete(key);
    this.#peerRules.delete(key);
  }

  /** Every rule set held (for a restarted proxy process to be handed). */
  ruleSets(): L7RuleSet[] {
    return [...this.#rules.values()];
  }

  onAccessLog(listener: (record: L7AccessLogRecord) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Opens every listener; throws (with the port) when one cannot be opened. */
  async start(): Promise<void> {
    const address = this.options.address ?? '127.0.0.1';
    for (const l of this.options.listeners) {
      const fd = openTcpSocket({ transparent: true, listen: { address, port: l.port } });
      const server = createServer({ noDelay: true }, (socket) => this.#accept(l, socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd }, () => resolve());
      });
      server.on('error', (err) => this.#log.error({ err, port: l.port }, 'proxy listener error'));
      this.#servers.push(server);
    }
  }

  async stop(): Promise<void> {
    for (const h of this.#handlers.values()) h.close?.();
    await Promise.all(this.#servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  }

  #rulesFor(key: string, identity: number): readonly unknown[] | undefined {
    let byPeer = this.#peerRules.get(key);
    if (!byPeer) this.#peerRules.set(key, (byPeer = new Map()));
    if (byPeer.has(identity)) return byPeer.get(identity);
    const set = this.#rules.get(key);
    const matching = set?.rules.filter((r) => r.identity === identity || r.identity === 0);
    const rules = matching && matching.length > 0 ? matching.flatMap((r) => r.rules) : undefined;
    byPeer.set(identity, rules);
    return rules;
  }

  #accept(listener: ProxyListener, socket: Socket): void {
    this.#counters.redirected[listener.port] = (this.#counters.redirected[listener.port] ?? 0) + 1;
    socket.on('error', () => socket.destroy());
    const srcIp = socket.remoteAddress?.replace(/^::ffff:/, '');
    const dstIp = socket.localAddress?.replace(/^::ffff:/, '');
    const handler = this.#handlers.get(listener.parser);
    const local = listener.direction === 'ingress' ? dstIp : srcIp;
    const endpoint = local ? this.options.identities.endpoint(local) : undefined;
    if (!srcIp || !dstIp || !handler || !endpoint) {
      this.#counters.refused++;
      this.#log.warn({ src: srcIp, dst: dstIp, port: listener.port }, 'proxied connection of no local endpoint: closed');
      return void socket.destroy();
    }
    const source: ProxyPeer = { ip: srcIp, port: socket.remotePort ?? 0, identity: listener.direction === 'egress' ? endpoint.identity : this.options.identities.identity(srcIp) };
    const destination: ProxyPeer = { ip: dstIp, port: socket.localPort ?? 0, identity: listener.direction === 'ingress' ? endpoint.identity : this.options.identities.identity(dstIp) };
    const key = tableKey(endpoint.endpointId, listener.direction, destination.port);
    const peer = listener.direction === 'ingress' ? source.identity : destination.identity;
    const conn: ProxiedConnection = {
      socket,
      direction: listener.direction,
      endpointId: endpoint.endpointId,
      source,
      destination,
      rules: () => this.#rulesFor(key, peer),
      connectUpstream: () => markedConnection(destination, source.identity),
      log: (record) => {
        this.#counters.requests[record.verdict]++;
        const full: L7AccessLogRecord = { time: record.time ?? new Date(), ...record, source, destination };
        for (const l of this.#listeners) l(full);
      },
    };
    handler.handle(conn);
  }
}
