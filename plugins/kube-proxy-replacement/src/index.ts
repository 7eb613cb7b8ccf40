import { createRequire } from 'node:module';
import { definePlugin, Tokens } from '@cilia/core';
import { netnsCookie } from '@cilia/netlink';
import { serviceRoutes } from './api.js';
import { lbMetricsCollector } from './metrics.js';
import { lbConfig, type LbConfig } from './config.js';
import { LB_OBJECT, LB_PROGRAMS, SOCK_OBJECT } from './objects.js';
import { KubeProxyReplacement } from './runtime.js';

export { lbConfig, nodePortRange, type LbConfig } from './config.js';
export { LB_OBJECT, LB_PROGRAMS, SOCK_OBJECT, SOCK_PROGRAMS } from './objects.js';
export { API_SERVICES_FILE } from './runtime.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

/** IPv4 in host byte order, as `SNAT_IPV4` is declared (0 when there is none). */
function ipv4HostOrder(ip: string | undefined): number {
  if (!ip) return 0;
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/**
 * An eBPF load balancer replacing kube-proxy: provides `Tokens.ServiceManager`, programs the
 * Services and EndpointSlices of the resource source (and services given through the API) into
 * the LB maps, and ships the programs that translate connections to them: at the socket, when
 * it connects or sends (cgroup hooks at agent.cgroupRoot), and per packet in the service slot
 * of the from-container, to-container and from-netdev pipelines for what no socket hook saw.
 */
export default definePlugin<LbConfig>({
  name,
  version,
  apiVersion: '^1',
  configKey: 'lb',
  description: 'eBPF load balancer replacing kube-proxy: ClusterIP, NodePort, LoadBalancer, ExternalIP; random or Maglev; session affinity',
  config: lbConfig,
  provides: [Tokens.ServiceManager, Tokens.HealthReporters, Tokens.ApiRoutes, Tokens.MetricsCollectors],
  requires: [Tokens.LocalNode, Tokens.ResourceSource],
  bpf: [
    {
      name: 'lb',
      object: LB_OBJECT,
      programs: LB_PROGRAMS,
      constants: ({ config, resolver }) => ({
        LB_MAGLEV_TABLE_SIZE: config.maglev.tableSize,
        LB_MAGLEV_SEED: config.maglev.seed,
        // NodePort traffic to a backend on another node leaves from this node's address.
        SNAT_IPV4: ipv4HostOrder(resolver.get(Tokens.LocalNode).get().ipv4),
      }),
    },
    {
      // Its programs go to cgroup socket hooks, which the plugin attaches at start.
      name: 'sock',
      object: SOCK_OBJECT,
      constants: async ({ config }) => ({
        LB_MAGLEV_TABLE_SIZE: config.maglev.tableSize,
        LB_MAGLEV_SEED: config.maglev.seed,
        SOCK_HOST_NETNS_ONLY: config.socketLB.hostNamespaceOnly,
        // The agent runs in the host's network namespace (a lab node's, in the lab).
        HOST_NETNS_COOKIE: await netnsCookie(),
      }),
    },
  ],
  register(bind, { config, agent, logger, resolver, bpf }) {
    const kpr = new KubeProxyReplacement({
      config,
      agent,
      logger,
      socketObject: () => bpf.object('sock'),
      node: () => resolver.get(Tokens.LocalNode).get(),
      resources: () => resolver.get(Tokens.ResourceSource),
    });
    bind(Tokens.ServiceManager).toConstant(kpr);
    bind(Tokens.HealthReporters).toConstant({ name, problems: () => kpr.problems() });
    bind(Tokens.ApiRoutes).toConstant(serviceRoutes(() => kpr));
    bind(Tokens.MetricsCollectors).toConstant(lbMetricsCollector(name, () => kpr.report()));
    // Handles only: the maps and the programs in their slots stay, and keep balancing.
    return { start: () => kpr.start(), stop: () => kpr.stop() };
  },
});
