import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { definePlugin, Tokens, type ApiRoute, type L7Parser } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { openNetlink } from '@cilia/netlink';
import { l7ProxyConfig, type L7ProxyConfig } from './config.js';
import { validateHttpRules } from './http-rules.js';
import { ProxySupervisor } from './process/supervisor.js';
import type { ProxyListener } from './server.js';

export { l7ProxyConfig, type L7ProxyConfig } from './config.js';
export { compileHttpRules, judgeHttp, validateHttpRules, type HttpDecision, type HttpRequestView, type HttpRule } from './http-rules.js';
export { L7ProxyServer, type L7ProxyServerOptions, type ProxyCounters, type ProxyListener } from './server.js';
export type { ProtocolHandler, ProxiedConnection, ProxyPeer } from './connection.js';
export { HttpHandler } from './http.js';
export { PinnedIdentities, type IdentityLookup, type LocalEndpoint } from './identities.js';
export { ProxySupervisor, type ProxyProcessStatus, type ProxySupervisorOptions } from './process/supervisor.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
/** `bpf/l7_redirect.c` → `dist/bpf/l7_redirect.o`; `../` is the package root from src/ and from dist/. */
export const L7_REDIRECT_OBJECT = new URL('../dist/bpf/l7_redirect.o', import.meta.url);
/** The proxy process's entry, built to `dist/process/main.js`. */
export const L7_PROXY_PROCESS = fileURLToPath(new URL('../dist/process/main.js', import.meta.url));

const ipv4ToU32 = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

/** The fwmark rule and local route that deliver TO_PROXY packets to this node's sockets. */
async function ensureProxyRouting(): Promise<void> {
  const nl = await openNetlink();
  try {
    const { toProxy, magicMask, proxyRouteTable, proxyRulePriority } = datapathMaps.ProxyMark;
    await nl.ensureFwmarkRule({ fwmark: toProxy, mask: magicMask, table: proxyRouteTable, priority: proxyRulePriority });
    await nl.replaceRoute({ dst: 'default', type: 'local', dev: 'lo', table: proxyRouteTable, scope: 'host' });
  } finally {
    await nl.close();
  }
}

/**
 * L7 policy: a transparent proxy enforcing CiliumNetworkPolicy `rules.http` (HTTP/1.1). Policy
 * entries with L7 rules carry the port of this proxy's listener for their parser and direction;
 * the l7-redirect slot (from-container: egress, to-container: ingress) assigns their
 * connections to it with bpf_sk_assign, and its upstream connections carry the original
 * source's identity in their mark, so the datapath judges them as that source's and never
 * redirects them again.
 */
export default definePlugin<L7ProxyConfig>({
  name,
  version,
  apiVersion: '^1',
  description: 'L7 policy: a transparent proxy enforcing CiliumNetworkPolicy HTTP rules',
  configKey: 'l7Proxy',
  config: l7ProxyConfig,
  provides: [Tokens.L7Proxy, Tokens.L7Parser, Tokens.ApiRoutes, Tokens.HealthReporters],
  bpf: [
    {
      name: 'l7_redirect',
      object: L7_REDIRECT_OBJECT,
      programs: {
        cil_l7_redirect_egress: { attach: 'from-container', slot: 'l7-redirect' },
        cil_l7_redirect_ingress: { attach: 'to-container', slot: 'l7-redirect' },
      },
      constants: ({ config }) => ({ PROXY_ADDRESS: ipv4ToU32(config.address) }),
    },
  ],
  register(bind, { config, agent, logger }) {
    const listeners: ProxyListener[] = Object.entries(config.ports).flatMap(([parser, p]) => [
      { parser, direction: 'ingress' as const, port: p.ingress },
      { parser, direction: 'egress' as const, port: p.egress },
    ]);
    const proxy = new ProxySupervisor({
      config: { bpfRoot: agent.bpfRoot, socket: join(agent.stateDir, 'l7-proxy.sock'), pidFile: join(agent.stateDir, 'l7-proxy.pid'), address: config.address, listeners },
      entry: L7_PROXY_PROCESS,
      logFile: join(agent.stateDir, 'l7-proxy.log'),
      logger: logger.child({ component: 'l7-proxy' }),
    });
    const redirectPort = (parser: string, direction: 'ingress' | 'egress') => listeners.find((l) => l.parser === parser && l.direction === direction)?.port;
    const accessLog = logger.child({ component: 'l7-access' });
    proxy.onAccessLog((r) => accessLog.info({ verdict: r.verdict, parser: r.parser, src: `${r.source.ip}:${r.source.port}`, dst: `${r.destination.ip}:${r.destination.port}`, ...r.fields }, 'l7 request'));
    bind(Tokens.L7Proxy).toConstant({
      redirectPort,
      upsertRules: async (set) => {
        const port = redirectPort(set.parser, set.direction);
        if (port === undefined) throw new Error(`rules.${set.parser}: no ${set.direction} listener for parser ${set.parser}`);
        proxy.upsert(set);
        return port;
      },
      removeRules: async (endpointId, direction, port) => proxy.remove(endpointId, direction, port),
      onAccessLog: (listener) => proxy.onAccessLog(listener),
    });
    const http: L7Parser = { name: 'http', validate: (rules) => validateHttpRules(rules) };
    bind(Tokens.L7Parser).toConstant(http);
    const routes: ApiRoute[] = [
      {
        method: 'GET',
        path: '/v1/l7proxy',
        summary: "The L7 proxy's listeners, rule sets and counters",
        handler: () => ({ body: { listeners, process: proxy.status(), ruleSets: proxy.ruleSets() } }),
      },
    ];
    bind(Tokens.ApiRoutes).toConstant(routes);
    bind(Tokens.HealthReporters).toConstant({
      name: 'l7-proxy',
      problems: () => (proxy.status().running ? [] : [`L7 proxy process not running${proxy.status().lastExit ? ` (${proxy.status().lastExit})` : ''}: restarting it`]),
      notes: () => {
        const s = proxy.status();
        const c = s.counters;
        const ports = listeners.map((l) => `${l.parser} ${l.direction} ${l.port}`).join(', ');
        const redirected = c ? Object.values(c.redirected).reduce((a, b) => a + b, 0) : 0;
        const restarts = s.restarts > 0 ? `, restarted ${s.restarts} time${s.restarts === 1 ? '' : 's'}${s.lastExit ? ` (last: ${s.lastExit})` : ''}` : '';
        const requests = c ? `requests ${c.requests.forwarded} forwarded / ${c.requests.denied} denied / ${c.requests.error} failed` : 'no requests yet';
        return [`L7 proxy process pid ${s.pid ?? '-'}${s.adopted ? ' (adopted)' : ''}${restarts} on ${config.address}: ${ports}; ${redirected} connections redirected, ${requests}`];
      },
    });
    return {
      async start() {
        await ensureProxyRouting();
        await proxy.start();
      },
      // A graceful stop ends the proxy; an agent that dies leaves it serving, and the next adopts it.
      stop: () => proxy.stop(),
    };
  },
});
