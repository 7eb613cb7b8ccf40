import { createRequire } from 'node:module';
import { definePlugin, defineToken, Tokens, type ApiRoute, type L7Parser } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { openNetlink } from '@cilia/netlink';
import { l7ProxyConfig, type L7ProxyConfig } from './config.js';
import { HttpHandler } from './http.js';
import { validateHttpRules } from './http-rules.js';
import { PinnedIdentities } from './identities.js';
import { L7ProxyServer, type ProxyListener } from './server.js';

export { l7ProxyConfig, type L7ProxyConfig } from './config.js';
export { compileHttpRules, judgeHttp, validateHttpRules, type HttpDecision, type HttpRequestView, type HttpRule } from './http-rules.js';
export { L7ProxyServer, type L7ProxyServerOptions, type ProxyCounters, type ProxyListener } from './server.js';
export type { ProtocolHandler, ProxiedConnection, ProxyPeer } from './connection.js';
export { HttpHandler } from './http.js';
export { PinnedIdentities, type IdentityLookup, type LocalEndpoint } from './identities.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
/** This plugin's own handle on its proxy server. */
const Server = defineToken<L7ProxyServer>(`${name}.Server`);

/** `bpf/l7_redirect.c` → `dist/bpf/l7_redirect.o`; `../` is the package root from src/ and from dist/. */
export const L7_REDIRECT_OBJECT = new URL('../dist/bpf/l7_redirect.o', import.meta.url);

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
  provides: [Server, Tokens.L7Proxy, Tokens.L7Parser, Tokens.ApiRoutes, Tokens.HealthReporters],
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
    const identities = new PinnedIdentities(agent.bpfRoot);
    const server = new L7ProxyServer({ listeners, handlers: [new HttpHandler()], identities, logger: logger.child({ component: 'l7-proxy' }), address: config.address });
    const accessLog = logger.child({ component: 'l7-access' });
    server.onAccessLog((r) => accessLog.info({ verdict: r.verdict, parser: r.parser, src: `${r.source.ip}:${r.source.port}`, dst: `${r.destination.ip}:${r.destination.port}`, ...r.fields }, 'l7 request'));
    bind(Server).toConstant(server);
    bind(Tokens.L7Proxy).toConstant({
      redirectPort: (parser, direction) => server.redirectPort(parser, direction),
      upsertRules: async (set) => server.upsertRules(set),
      removeRules: async (endpointId, direction, port) => server.removeRules(endpointId, direction, port),
      onAccessLog: (listener) => server.onAccessLog(listener),
    });
    const http: L7Parser = { name: 'http', validate: (rules) => validateHttpRules(rules) };
    bind(Tokens.L7Parser).toConstant(http);
    const routes: ApiRoute[] = [
      {
        method: 'GET',
        path: '/v1/l7proxy',
        summary: "The L7 proxy's listeners, rule sets and counters",
        handler: () => ({ body: { mode: 'in-process', listeners: server.listeners, ruleSets: server.ruleSets(), counters: server.counters() } }),
      },
    ];
    bind(Tokens.ApiRoutes).toConstant(routes);
    bind(Tokens.HealthReporters).toConstant({
      name,
      problems: () => [],
      notes: () => {
        const c = server.counters();
        const ports = listeners.map((l) => `${l.parser} ${l.direction} ${l.port}`).join(', ');
        const redirected = Object.values(c.redirected).reduce((a, b) => a + b, 0);
        return [`L7 proxy (in the agent's process) on ${config.address}: ${ports}; ${redirected} connections redirected, requests ${c.requests.forwarded} forwarded / ${c.requests.denied} denied / ${c.requests.error} failed`];
      },
    });
    return {
      async start() {
        await ensureProxyRouting();
        await server.start();
        logger.info({ listeners }, 'L7 proxy listening');
      },
      async stop() {
        await server.stop();
        identities.close();
      },
    };
  },
});
