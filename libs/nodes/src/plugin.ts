import { definePlugin, defineToken, Tokens, z, type Encapsulation, type Ipam, type NodeInfo, type Resolver } from '@cilia/core';
import { openNetlink } from '@cilia/netlink';
import { isIPv4 } from 'node:net';
import pkg from '../package.json' with { type: 'json' };
import { nodeRoutes } from './api.js';
import { NodeSync } from './node-sync.js';
import { KvNodeRegistry } from './registry.js';

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

/** The node session the nodes plugin builds, for the plugin that starts it once endpoints are adopted. */
const NodeSyncToken = defineToken<{ start(encapsulation: Encapsulation | undefined): Promise<void>; stop(): Promise<void> }>('cilia.nodes.NodeSync');

/**
 * The agent's default `NodeRegistry` and `LocalNode`: this node's addresses, tunnel endpoint and
 * pod CIDRs (known at start, before it registers anywhere, so an overlay can build its load-time
 * constants from them), the registry of the cluster's nodes in the KvStore, `/v1/nodes` and
 * `/v1/ipcache`. Registration itself starts later, in {@link nodeSyncPlugin}. An unreachable
 * KvStore does not stop the agent: the node registers once the store answers, and `cilia status`
 * says so meanwhile.
 */
export const nodesPlugin = definePlugin<NodesConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'nodes',
  description: "This node's addresses, node registration and discovery, and the ipcache shared through the KvStore (Cilium key layout)",
  config: nodesConfig,
  provides: [Tokens.NodeRegistry, Tokens.LocalNode, NodeSyncToken, Tokens.ApiRoutes, Tokens.HealthReporters],
  requires: [Tokens.KvStore, Tokens.IpCache, Tokens.Ipam],
  register(bind, { config, logger, agent, resolver }) {
    let registry: KvNodeRegistry | undefined;
    let local: NodeInfo | undefined;
    let sync: NodeSync | undefined;
    const registryOf = (r: Resolver) => (registry ??= new KvNodeRegistry({ kv: r.get(Tokens.KvStore), logger, prefix: config.prefix, leaseTtlSeconds: config.leaseTtlSeconds }));
    const localNode = () => {
      if (!local) throw new Error(`${Tokens.LocalNode.name} is known once ${pkg.name} has started`);
      return local;
    };
    bind(Tokens.NodeRegistry).toFactory(registryOf);
    bind(Tokens.LocalNode).toConstant({ get: localNode });
    bind(NodeSyncToken).toFactory((r) => ({
      async start(encapsulation) {
        sync = new NodeSync({ registry: registryOf(r), kv: r.get(Tokens.KvStore), ipcache: r.get(Tokens.IpCache), node: localNode(), ipcachePrefix: config.ipcachePrefix, logger });
        await sync.start(encapsulation);
      },
      stop: async () => sync?.stop(),
    }));
    bind(Tokens.ApiRoutes).toFactory((r) => nodeRoutes(() => registryOf(r), () => r.get(Tokens.IpCache)));
    bind(Tokens.HealthReporters).toFactory(() => ({ name: pkg.name, problems: () => sync?.problems() ?? [] }));
    return {
      async start() {
        local = await discoverLocalNode(agent.nodeName, config, resolver.get(Tokens.Ipam));
        logger.info({ node: local }, 'local node');
      },
    };
  },
});

/**
 * Starts this node among the others (see {@link NodeSync}) after the datapath has adopted the
 * local endpoints — so the ipcache entries published for this node are complete from the first —
 * and after the encapsulation (an overlay or native routing, when one is configured), which it
 * sets up and keeps in step with the registry. Stops it first, revoking the node's lease.
 */
export const nodeSyncPlugin = definePlugin({
  name: '@cilia/nodes-sync',
  version: pkg.version,
  apiVersion: '^1',
  description: 'Registers this node, shares the ipcache and drives the encapsulation towards the other nodes (from @cilia/nodes)',
  requires: [NodeSyncToken],
  optional: [Tokens.Encapsulation, Tokens.EndpointManager],
  register(_bind, { resolver }) {
    return {
      start: () => resolver.get(NodeSyncToken).start(resolver.getOptional(Tokens.Encapsulation)),
      stop: () => resolver.get(NodeSyncToken).stop(),
    };
  },
});

/** This node as it registers: configured addresses, or the default route's device and the IPAM pools. */
async function discoverLocalNode(name: string, config: NodesConfig, ipam: Ipam): Promise<NodeInfo> {
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
