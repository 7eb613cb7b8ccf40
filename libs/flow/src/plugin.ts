import { dirname, join } from 'node:path';
import { definePlugin, Tokens, z, type Resolver } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { flowRoutes, serviceMapPages } from './api.js';
import { Enricher } from './enrich.js';
import { ObserverServer } from './grpc.js';
import { HUBBLE_METRICS, HubbleMetrics } from './metrics.js';
import { FlowObserver } from './observer.js';
import { DatapathEventReader } from './reader.js';
import { Relay } from './relay.js';

/** Settings of flow visibility (the `hubble:` section, as Cilium's `hubble-*` options). */
export const flowConfig = z.strictObject({
  enabled: z.boolean().default(true).describe('Read the datapath\'s events into flows (Hubble). Off: no flows, no flow metrics, nothing read.'),
  bufferCapacity: z
    .number()
    .int()
    .min(1)
    .max(1_048_575)
    .refine((n) => ((n + 1) & n) === 0, 'must be one less than a power of two (1, 3, 7, …, 4095, …), as Hubble\'s event buffer capacity')
    .default(4095)
    .describe('Flows kept for `cilia observe` and GetFlows (a ring: the oldest go first).'),
  metrics: z
    .array(z.enum(HUBBLE_METRICS))
    .default([...HUBBLE_METRICS])
    .describe('Hubble metrics served on /metrics: flow (hubble_flows_processed_total), drop, tcp, policy, port-distribution; hubble_lost_events_total always.'),
  socketPath: z
    .string()
    .default('')
    .describe('Unix socket of the Observer gRPC API (Hubble\'s observer.proto). Empty: hubble.sock beside agent.apiSocket. "-": none.'),
  listenAddress: z
    .string()
    .regex(/^$|^[^\s:]*:\d{1,5}$/, 'expected host:port, :port, or "" for none')
    .default('')
    .describe('host:port serving the Observer gRPC API over TCP (Hubble uses :4244). Empty: none.'),
  tls: z
    .strictObject({
      certFile: z.string().min(1).describe('PEM certificate chain of the TCP listener.'),
      keyFile: z.string().min(1).describe('PEM private key of the TCP listener.'),
      clientCaFile: z.string().min(1).optional().describe('PEM CA clients must present a certificate of (mutual TLS). Absent: no client certificate asked for.'),
    })
    .optional()
    .describe('TLS for listenAddress. Absent: plaintext.'),
  relay: z
    .strictObject({
      enabled: z.boolean().default(false).describe('Merge the flows of every node of the registry (`cilia observe --all-nodes`): each node\'s Observer API at <node ip>:<the port of hubble.listenAddress>, which every node must serve.'),
      tls: z
        .strictObject({
          caFile: z.string().min(1).describe('PEM CA of the nodes\' certificates.'),
          certFile: z.string().min(1).optional().describe('Client certificate (mutual TLS).'),
          keyFile: z.string().min(1).optional().describe('Client key (mutual TLS).'),
        })
        .optional()
        .describe('TLS towards the nodes. Absent: plaintext.'),
    })
    .prefault({})
    .describe('The cluster-wide view (Hubble Relay).'),
});

/** The parsed `hubble:` section. */
export type FlowConfig = z.infer<typeof flowConfig>;

/**
 * Flow visibility, a default of the agent's base module: it reads the datapath's drop, trace and
 * policy-verdict records from the `cilia_events` ring buffer, enriches each into a Hubble flow
 * (both sides' endpoint, identity, namespace, pod and labels — remote pods through the shared
 * ipcache and identities), keeps the recent ones in a bounded ring for `cilia observe` and
 * `cilia monitor` (`/v1/flows`), and counts Hubble's flow metrics.
 */
export const flowPlugin = definePlugin<FlowConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'hubble',
  description: 'Flow visibility: datapath events as Hubble flows, a flow ring with filters, flow metrics',
  config: flowConfig,
  provides: [Tokens.FlowSource, Tokens.ApiRoutes, Tokens.MetricsCollectors, Tokens.WebPages],
  // After the datapath (which pins the ring buffer); enrichment reads endpoints, identities, the ipcache.
  optional: [Tokens.Datapath, Tokens.EndpointManager, Tokens.IdentityAllocator, Tokens.IpCache, Tokens.NodeRegistry],
  register(bind, { config, agent, logger, resolver }) {
    let built: { observer: FlowObserver; enricher: Enricher; metrics: HubbleMetrics; reader?: DatapathEventReader; grpc?: ObserverServer; relay?: Relay } | undefined;
    const build = (r: Resolver) => {
      if (built) return built;
      const metrics = new HubbleMetrics(config.metrics);
      const observer = new FlowObserver({ node: agent.nodeName, capacity: config.bufferCapacity, metrics });
      const enricher = new Enricher({
        ...optional('endpoints', r.getOptional(Tokens.EndpointManager)),
        ...optional('identities', r.getOptional(Tokens.IdentityAllocator)),
        ...optional('ipcache', r.getOptional(Tokens.IpCache)),
      });
      const relay = config.relay.enabled
        ? new Relay({
            observer,
            nodes: () => r.getOptional(Tokens.NodeRegistry),
            port: Number(config.listenAddress.slice(config.listenAddress.lastIndexOf(':') + 1)),
            ...(config.relay.tls ? { tls: config.relay.tls } : {}),
            logger: logger.child({ component: 'hubble-relay' }),
          })
        : undefined;
      return (built = { observer, enricher, metrics, ...(relay ? { relay } : {}) });
    };
    bind(Tokens.FlowSource).toFactory((r) => build(r).observer);
    bind(Tokens.ApiRoutes).toFactory((r) => flowRoutes(() => build(r).observer, () => build(r).relay));
    bind(Tokens.MetricsCollectors).toFactory((r) => ({ name: pkg.name, collect: () => build(r).metrics.families() }));
    // The service map on the agent's HTTP address; WebPages is an extension point: one binding per page.
    for (const page of ['/servicemap', '/servicemap.svg']) bind(Tokens.WebPages).toFactory((r) => serviceMapPages(() => build(r).observer).find((p) => p.path === page)!);
    return {
      async start() {
        if (config.relay.enabled && config.listenAddress === '') throw new Error('hubble.relay.enabled: the relay reaches every node on the port of hubble.listenAddress, which is not set');
        const b = build(resolver);
        if (!config.enabled) return;
        b.enricher.start();
        b.reader = new DatapathEventReader({ pinRoot: agent.bpfRoot, observer: b.observer, enricher: b.enricher, logger: logger.child({ component: 'flow-reader' }) });
        b.reader.start();
        const socketPath = config.socketPath === '-' ? '' : config.socketPath || join(dirname(agent.apiSocket), 'hubble.sock');
        b.grpc = new ObserverServer({
          observer: b.observer,
          version: pkg.version,
          logger: logger.child({ component: 'hubble-grpc' }),
          socketPath,
          address: config.listenAddress,
          ...(config.tls ? { tls: config.tls } : {}),
          nodes: () => resolver.getOptional(Tokens.NodeRegistry),
          cluster: () => b.relay,
          ...(config.listenAddress ? { peerPort: Number(config.listenAddress.slice(config.listenAddress.lastIndexOf(':') + 1)) } : {}),
        });
        await b.grpc.start();
        logger.info({ socket: socketPath, address: b.grpc.address ?? '', tls: config.tls !== undefined }, 'serving the Observer gRPC API');
      },
      async stop() {
        await built?.grpc?.stop();
        built?.relay?.close();
        built?.reader?.stop();
        built?.enricher.stop();
      },
    };
  },
});

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
