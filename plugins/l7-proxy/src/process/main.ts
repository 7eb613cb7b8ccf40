// The L7 proxy's own process (as cilium-envoy runs apart from the agent): started and supervised
// by the agent's @cilia/plugin-l7-proxy, it keeps its listeners, its connections and the last
// rules it was given when the agent dies, and takes a restarted agent's connection on its unix
// socket. Identities come from the datapath's pinned maps, so it judges on while the agent is away.
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { HttpHandler } from '../http.js';
import { PinnedIdentities } from '../identities.js';
import { L7ProxyServer } from '../server.js';
import { PROXY_CONFIG_ENV, readMessages, ruleSetKey, send, type ProxyProcessConfig, type ToProxy } from './protocol.js';

const config = JSON.parse(process.env[PROXY_CONFIG_ENV] ?? 'null') as ProxyProcessConfig | null;
if (!config) {
  console.error(`${PROXY_CONFIG_ENV} is not set: this process is started by @cilia/plugin-l7-proxy`);
  process.exit(2);
}
const log = pino({ base: { component: 'l7-proxy', pid: process.pid } });
const identities = new PinnedIdentities(config.bpfRoot);
const server = new L7ProxyServer({ listeners: config.listeners, handlers: [new HttpHandler()], identities, logger: log, address: config.address });
let agent: Socket | undefined;
let lastCounters = '';

server.onAccessLog((record) => {
  if (agent && !agent.destroyed) send(agent, { op: 'log', record: { ...record, time: record.time.toISOString() } });
  else log.info({ verdict: record.verdict, parser: record.parser, src: `${record.source.ip}:${record.source.port}`, dst: `${record.destination.ip}:${record.destination.port}`, ...record.fields }, 'l7 request (agent away)');
});

function onMessage(m: ToProxy): void {
  switch (m.op) {
    case 'upsert':
      try {
        server.upsertRules(m.set);
      } catch (err) {
        log.error({ err, endpointId: m.set.endpointId }, 'rule set refused');
      }
      break;
    case 'remove':
      server.removeRules(m.endpointId, m.direction, m.port);
      break;
    case 'prune': {
      const keep = new Set(m.keep);
      for (const s of server.ruleSets()) if (!keep.has(ruleSetKey(s.endpointId, s.direction, s.port))) server.removeRules(s.endpointId, s.direction, s.port);
      break;
    }
    case 'shutdown':
      void shutdown(0);
      break;
  }
}

async function shutdown(code: number): Promise<void> {
  control.close();
  await server.stop();
  identities.close();
  rmSync(config!.pidFile, { force: true });
  process.exit(code);
}

const control = createServer((socket) => {
  // One agent at a time: a restarted agent replaces the connection of the one that died.
  agent?.destroy();
  agent = socket;
  socket.on('error', () => socket.destroy());
  readMessages<ToProxy>(socket, onMessage, (line) => log.warn({ line: line.slice(0, 200) }, 'unreadable message from the agent'));
  send(socket, { op: 'hello', pid: process.pid, startedAt: new Date(startedAt).toISOString(), listeners: config.listeners, ruleSets: server.ruleSets().length });
  lastCounters = '';
});
const startedAt = Date.now();

await server.start();
rmSync(config.socket, { force: true });
await new Promise<void>((resolve) => control.listen(config.socket, resolve));
writeFileSync(config.pidFile, `${process.pid}\n`);
log.info({ listeners: config.listeners, socket: config.socket }, 'L7 proxy listening');
setInterval(() => {
  const counters = server.counters();
  const text = JSON.stringify(counters);
  if (text === lastCounters || !agent) return;
  lastCounters = text;
  send(agent, { op: 'counters', counters, ruleSets: server.ruleSets().length });
}, 250).unref();
process.on('SIGTERM', () => void shutdown(0));
