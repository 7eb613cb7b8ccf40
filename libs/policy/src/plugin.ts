import { join, resolve } from 'node:path';
import { definePlugin, Tokens, z, type Logger, type Resolver } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { policyRoutes } from './api.js';
import { PolicyEngine } from './engine/index.js';
import type { L7Enforcement } from './engine/l7.js';
import { policyMetricsCollector } from './metrics.js';
import { PolicyService } from './service.js';
import { PolicyStateFile } from './store.js';

/** Settings of policy enforcement (the `policy:` section). */
export const policyConfig = z.strictObject({
  enforcement: z
    .enum(['default', 'always', 'never'])
    .default('default')
    .describe(
      'Enforcement mode, as in Cilium: "default" enforces a direction of an endpoint once a rule selecting it has that direction; "always" enforces both directions of every endpoint (no policy, no traffic); "never" enforces nothing.',
    ),
  allowLocalhost: z
    .boolean()
    .default(true)
    .describe('Traffic from the host (identity 1) to an endpoint always passes ingress enforcement, as Cilium\'s allow-localhost "always" (health checks, kubelet probes).'),
  stateFile: z
    .string()
    .min(1)
    .optional()
    .describe('Where policies imported through the API (`cilia policy import`) persist across restarts; default <agent.stateDir>/policies.json. A relative path is taken from the agent\'s working directory.'),
  syncTimeoutMs: z
    .number()
    .int()
    .min(0)
    .max(600_000)
    .default(5000)
    .describe('How long start waits for the resource source to list its policies before endpoints are adopted without them (a warning is logged).'),
});

/** The L7 proxy and its parsers as the engine uses them, when a proxy is configured. */
function l7Enforcement(r: Resolver, log: Logger): { l7?: L7Enforcement } {
  const proxy = r.getOptional(Tokens.L7Proxy);
  if (!proxy) return {};
  const parsers = r.getAll(Tokens.L7Parser);
  return {
    l7: {
      redirectPort: (parser, direction) => (parsers.some((p) => p.name === parser) ? proxy.redirectPort(parser, direction) : undefined),
      validate: (parser, rules, path) => (parsers.find((p) => p.name === parser)?.validate(rules) ?? []).map((e) => ({ path: `${path}${e.path}`, reason: e.reason })),
      publish: (set) => void proxy.upsertRules(set).catch((err: unknown) => log.error({ err, endpointId: set.endpointId, port: set.port }, 'L7 rules not handed to the proxy')),
      withdraw: (endpointId, direction, port) => void proxy.removeRules(endpointId, direction, port).catch((err: unknown) => log.error({ err, endpointId, port }, 'L7 rules not withdrawn from the proxy')),
    },
  };
}

/** The parsed `policy:` section. */
export type PolicyConfig = z.infer<typeof policyConfig>;

/**
 * The agent's default `PolicyRepository`: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
 * and NetworkPolicy from the resource source (the manifest directory) and the API
 * (`/v1/policy`, persisted in the state directory), resolved per endpoint by the engine; its CIDR
 * peers become identities in the ipcache. It starts before the datapath, so endpoints are
 * adopted with their full policy.
 */
export const policyPlugin = definePlugin<PolicyConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'policy',
  description: 'Identity-based L3/L4 policy: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy from manifests and the API',
  config: policyConfig,
  provides: [Tokens.PolicyRepository, Tokens.ApiRoutes, Tokens.HealthReporters, Tokens.MetricsCollectors],
  requires: [Tokens.IdentityAllocator, Tokens.IpCache],
  optional: [Tokens.ResourceSource, Tokens.L7Proxy, Tokens.L7Parser],
  register(bind, { config, agent, logger, resolver }) {
    let built: { engine: PolicyEngine; service: PolicyService } | undefined;
    const build = (r: Resolver) => {
      if (built) return built;
      const engine = new PolicyEngine({
        identities: r.get(Tokens.IdentityAllocator),
        ipcache: r.get(Tokens.IpCache),
        enforcement: config.enforcement,
        allowLocalhost: config.allowLocalhost,
        logger: logger.child({ component: 'policy-engine' }),
        ...l7Enforcement(r, logger.child({ component: 'policy-l7' })),
      });
      const store = new PolicyStateFile(config.stateFile ? resolve(config.stateFile) : join(agent.stateDir, 'policies.json'));
      return (built = { engine, service: new PolicyService({ repository: engine, store, logger: logger.child({ component: 'policy-service' }) }) });
    };
    bind(Tokens.PolicyRepository).toFactory((r) => build(r).service.repository);
    bind(Tokens.ApiRoutes).toFactory((r) => policyRoutes(() => build(r).service));
    bind(Tokens.HealthReporters).toFactory((r) => ({ name: pkg.name, problems: () => build(r).service.problems() }));
    bind(Tokens.MetricsCollectors).toFactory((r) => policyMetricsCollector(pkg.name, build(r).engine));
    return {
      async start() {
        const { service } = build(resolver);
        // Restored CIDR identities reach the ipcache, which holds them until the datapath attaches its map.
        await service.restore();
        const source = resolver.getOptional(Tokens.ResourceSource);
        if (source) await service.follow(source, config.syncTimeoutMs);
      },
      stop() {
        built?.service.close();
        built?.engine.close();
      },
    };
  },
});
