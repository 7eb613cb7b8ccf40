import { definePlugin, Tokens, z, type Ipam, type NodeInfo } from '@cilia/core';
import { openNetlink } from '@cilia/netlink';
import { isIPv4 } from 'node:net';
import pkg from '../package.json' with { type: 'json' };
import { nodeRoutes } from './api.js';
import { EncapsulationDriver } from './encapsulation.js';
import { KvIpCacheSync } from './ipcache-sync.js';
import { KvNodeRegistry } from './registry.js';
import { RemotePodCidrs } from './pod-cidrs.js';
import { NodeSession } from './session.js';

const keyPrefix = (fallback: string, what: string) =>
  z.string().regex(/^[^\s]+\/$/, 'must be a key prefix ending with "/"').default(fallback).describe(what);
const ipv4OrAuto = z.string().refine((v) => v === 'auto' || isIPv4(v), 'must be "auto" or an IPv4 address');
const ipv4Cidr = z.string().refine((v) => /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v) && isIPv4(v.split('/')[0]!) && Number(v.split('/')[1]) <= 32, 'must be an IPv4 prefix like 10.0.0.0/24');

/** Settings of node registration and the shared ipcache (the `nodes:` section). */
export const nodesConfig = z.strictObject({
  prefix: keyPrefix('cilium/state/nodes/v1/default/', 'KvStore prefix of the node keys (<prefix><node name>), as Cilium lays them out'),
  ipcachePrefix: keyPrefix('cilium/state/ip/v1/default/', 'KvStore prefix of the shared ipcache entries (<prefix><ip>)'),
  ipv4: ipv4OrAuto.default('auto').describe("this node's IPv4 address; \"auto\" is the first IPv4 address of the device of the default route"),
  podCIDRs: z.array(ipv4Cidr).optional().describe("this node's pod CIDRs; default: the IPAM pools"),
  tunnelEndpoint: ipv4OrAuto.default('auto').describe('the address other nodes tunnel to; "auto" is the node IPv4'),
  leaseTtlSeconds: z.number().int().min(5).default(15).describe("TTL of the node's lease holding its node key and ipcache entries"),
});

/** The parsed `nodes:` section. */
export type NodesConfig = z.infer<typeof nodesConfig>;

const sessions = new WeakMap<object, NodeSession>();
const drivers = new WeakMap<object, EncapsulationDriver>();
const podCidrs = new WeakMap<object, RemotePodCidrs>();

/**
 * The agent's default `NodeRegistry`: registers this node in the KvStore under its lease,
 * discovers the others, shares the ipcache entries of local endpoints with them and applies
 * theirs; `/v1/nodes` and `/v1/ipcache`. An unreachable KvStore does not stop the agent: the
 * node registers once the store answers, and `cilia status` says so meanwhile.
 */
export const nodesPlugin = definePlugin<NodesConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'nodes',
  description: 'Node registration and discovery, and the ipcache shared through the KvStore (Cilium key layout)',
  config: nodesConfig,
  provides: [Tokens.NodeRegistry, Tokens.ApiRoutes, Tokens.HealthReporters],
  requires: [Tokens.KvStore, Tokens.IpCache, Tokens.Ipam],
  // An overlay or native-routing plugin, when one is configured: kept in step with the nodes.
  optional: [Tokens.Encapsulation],
  register(bind, { config, logger }) {
    bind(Tokens.NodeRegistry).toFactory((r) => new KvNodeRegistry({ kv: r.get(Tokens.KvStore), logger, prefix: config.prefix, leaseTtlSeconds: config.leaseTtlSeconds }));
    bind(Tokens.ApiRoutes).toFactory((r) =>
      nodeRoutes(
        () => r.get(Tokens.NodeRegistry) as KvNodeRegistry,
        () => r.get(Tokens.IpCache),
      ),
    );
    bind(Tokens.HealthReporters).toFactory((r) => ({ name: pkg.name, problems: () => sessions.get(r.get(Tokens.NodeRegistry))?.problems() ?? [] }));
  },
  async start({ resolver, logger, agent, config }) {
    const registry = resolver.get(Tokens.NodeRegistry) as KvNodeRegistry;
    const node = await localNode(agent.nodeName, config, resolver.get(Tokens.Ipam));
    const sync = new KvIpCacheSync({
      kv: resolver.get(Tokens.KvStore),
      ipcache: resolver.get(Tokens.IpCache),
      node: node.name,
      ...(node.tunnelEndpoint ? { tunnelEndpoint: node.tunnelEndpoint } : {}),
      lease: () => registry.lease(),
      logger: logger.child({ component: 'ipcache-sync' }),
      prefix: config.ipcachePrefix,
    });
    // A new lease (the old one was lost): the entries it held are gone, write them again.
    registry.onLease(() => void sync.republish());
    // Other nodes' pod CIDRs before their routes: a pod's first packets to a remote pod whose
    // own entry has not arrived yet are encapsulated, and not masqueraded, from the start.
    const cidrs = new RemotePodCidrs({ registry, ipcache: resolver.get(Tokens.IpCache), node: node.name, logger: logger.child({ component: 'pod-cidrs' }) });
    await cidrs.start();
    podCidrs.set(registry, cidrs);
    const encapsulation = resolver.getOptional(Tokens.Encapsulation);
    if (encapsulation) {
      const driver = new EncapsulationDriver({ encapsulation, registry, local: node, logger: logger.child({ component: 'encapsulation' }) });
      await driver.start();
      drivers.set(registry, driver);
    }
    const session = new NodeSession({ registry, sync, node, logger });
    sessions.set(registry, session);
    await session.start();
    // Registered and listed: whatever the encapsulation restored for nodes not listed is stale.
    // (Not registered yet — KvStore away — the list is unknown: keep everything meanwhile.)
    if (session.problems().length === 0) await drivers.get(registry)?.pruneStale();
  },
  async stop({ resolver }) {
    drivers.get(resolver.get(Tokens.NodeRegistry))?.stop();
    podCidrs.get(resolver.get(Tokens.NodeRegistry))?.stop();
    await sessions.get(resolver.get(Tokens.NodeRegistry))?.stop();
  },
});

/** This node as it registers: configured addresses, or the default route's device and the IPAM pools. */
async function localNode(name: string, config: NodesConfig, ipam: Ipam): Promise<NodeInfo> {
  const ipv4 = config.ipv4 === 'auto' ? await defaultRouteIPv4() : config.ipv4;
  const tunnelEndpoint = config.tunnelEndpoint === 'auto' ? ipv4 : config.tunnelEndpoint;
  const podCidrs = config.podCIDRs ?? ipam.pools().map((p) => p.cidr);
  return { name, podCidrs, ...(ipv4 ? { ipv4 } : {}), ...(tunnelEndpoint ? { tunnelEndpoint } : {}) };
}

async function defaultRouteIPv4(): Promise<string | undefined> {
  const host = await openNetlink();
  try {
    const route = (await host.listRoutes({ family: 4 })).find((r) => r.dst === 'default' && r.ifindex !== undefined);
    if (route?.ifindex === undefined) return undefined;
    return (await host.listAddresses({ dev: route.ifindex, family: 4 }))[0]?.address;
  } finally {
    await host.close();
  }
}
