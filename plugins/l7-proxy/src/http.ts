// HTTP/1.1 through the proxy: Node's own parser (llhttp) reads requests off the accepted
// connection, one after another on a keep-alive connection; each is judged by the rules of
// the moment, and an allowed one goes upstream over this connection's own keep-alive
// connection to the original destination (marked with the source's identity). A denied one
// is answered 403 `Access denied` and the connection stays open; a malformed one gets Node's
// 400 and that connection alone is closed.
import { Agent, createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProtocolHandler, ProxiedConnection } from './connection.js';
import { compileHttpRules, judgeHttp, type HttpRule } from './http-rules.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const DENIED_BODY = 'Access denied';

interface ConnectionState {
  readonly conn: ProxiedConnection;
  readonly agent: Agent;
}

/** Rules compiled once per rules array (the table hands out the same array until they change). */
const compiled = new WeakMap<readonly unknown[], HttpRule[]>();
function compile(rules: readonly unknown[]): HttpRule[] {
  let c = compiled.get(rules);
  if (!c) compiled.set(rules, (c = compileHttpRules(rules)));
  return c;
}

function forwardHeaders(raw: readonly string[], rewrite: ReadonlyMap<string, string | undefined>): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || rewrite.has(lower)) continue;
    const had = out[name];
    out[name] = had === undefined ? raw[i + 1]! : [...(Array.isArray(had) ? had : [had]), raw[i + 1]!];
  }
  for (const [name, value] of rewrite) if (value !== undefined) out[name] = value;
  return out;
}

function responseHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

export class HttpHandler implements ProtocolHandler {
  readonly name = 'http';
  readonly #server: Server;
  readonly #state = new WeakMap<Socket, ConnectionState>();

  constructor() {
    this.#server = createServer({ keepAliveTimeout: 0, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) => this.#request(req, res));
    // Node answers a malformed request with 400 and closes that connection; nothing else is affected.
  }

  handle(conn: ProxiedConnection): void {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: () => Socket }).createConnection = () => conn.connectUpstream();
    this.#state.set(conn.socket, { conn, agent });
    conn.socket.once('close', () => agent.destroy());
    this.#server.emit('connection', conn.socket);
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    const state = this.#state.get(req.socket);
    if (!state) return void res.destroy();
    const { conn, agent } = state;
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const host = req.headers.host ?? '';
    const fields = (code: number, extra: Record<string, unknown> = {}) => ({
      method, url, host, protocol: `HTTP/${req.httpVersion}`, code, latencyMs: Number(process.hrtime.bigint() - started) / 1e6, ...extra,
    });
    const rules = conn.rules();
    const decision = rules ? judgeHttp(compile(rules), { method, path: url, host, headers: req.headers }) : undefined;
    if (!decision?.allowed) {
      res.writeHead(403, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(DENIED_BODY) });
      res.end(DENIED_BODY);
      conn.log({ verdict: 'denied', parser: 'http', fields: fields(403) });
      return;
    }
    const mismatches = decision.mismatches.length > 0 ? { headerMismatches: decision.mismatches } : {};
    const up = request(
      { agent, host: conn.destination.ip, port: conn.destination.port, method, path: url, headers: forwardHeaders(req.rawHeaders, decision.rewrite), setHost: false },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, responseHeaders(ures.rawHeaders));
        ures.pipe(res);
        ures.once('end', () => conn.log({ verdict: 'forwarded', parser: 'http', fields: fields(ures.statusCode ?? 0, mismatches) }));
      },
    );
    up.once('error', (err) => {
      conn.log({ verdict: 'error', parser: 'http', fields: fields(503, { error: err.message }) });
      if (!res.headersSent) {
        const body = `upstream connect error: ${err.message}`;
        res.writeHead(503, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else res.destroy();
    });
    req.pipe(up);
  }

  close(): void {
    this.#server.close();
    this.#server.closeAllConnections();
  }
}
