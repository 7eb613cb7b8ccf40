import { join, resolve } from 'node:path';
import { definePlugin, defineToken, Tokens, z, type IdentityAllocator, type Logger } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { policyRoutes } from './api.js';
import { DeferredIpCache } from './deferred-ipcache.js';
import { PolicyEngine } from './engine/index.js';
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

/** The parsed `policy:` section. */
export type PolicyConfig = z.infer<typeof policyConfig>;

interface Runtime {
  readonly engine: PolicyEngine;
  readonly service: PolicyService;
  readonly ipcache: DeferredIpCache;
}

const runtimes = new WeakMap<object, Runtime>();

function runtimeOf(repository: unknown): Runtime {
  const runtime = typeof repository === 'object' && repository !== null ? runtimes.get(repository) : undefined;
  if (!runtime) throw new Error('the PolicyRepository bound in this agent is not the one @cilia/policy built');
  return runtime;
}

/**
 * The agent's default `PolicyRepository`: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
 * and NetworkPolicy from the resource source (the manifest directory) and the API
 * (`/v1/policy`, persisted in the state directory), resolved per endpoint by the engine. It
 * starts before the datapath, so endpoints are adopted with their full policy.
 */
export const policyPlugin = definePlugin<PolicyConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'policy',
  description: 'Identity-based L3/L4 policy: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy from manifests and the API',
  config: policyConfig,
  provides: [Tokens.PolicyRepository, Tokens.ApiRoutes, Tokens.HealthReporters, Tokens.MetricsCollectors],
  requires: [Tokens.IdentityAllocator],
  optional: [Tokens.ResourceSource],
  register(bind, { config, agent, logger }) {
    const build = (identities: IdentityAllocator): Runtime => {
      const ipcache = new DeferredIpCache();
      const engine = newEngine(identities, ipcache, config, logger);
      const store = new PolicyStateFile(config.stateFile ? resolve(config.stateFile) : join(agent.stateDir, 'policies.json'));
      const runtime = { engine, ipcache, service: new PolicyService({ repository: engine, store, logger: logger.child({ component: 'policy-service' }) }) };
      runtimes.set(engine, runtime);
      return runtime;
    };
    bind(Tokens.PolicyRepository).toFactory((r) => build(r.get(Tokens.IdentityAllocator)).service.repository);
    bind(Tokens.ApiRoutes).toFactory((r) => policyRoutes(() => runtimeOf(r.get(Tokens.PolicyRepository)).service));
    bind(Tokens.HealthReporters).toFactory((r) => ({ name: pkg.name, problems: () => runtimeOf(r.get(Tokens.PolicyRepository)).service.problems() }));
    bind(Tokens.MetricsCollectors).toFactory((r) => policyMetricsCollector(pkg.name, runtimeOf(r.get(Tokens.PolicyRepository)).engine));
  },
  async start({ resolver, config }) {
    const { service } = runtimeOf(resolver.get(Tokens.PolicyRepository));
    await service.restore();
    const source = resolver.getOptional(Tokens.ResourceSource);
    if (source) await service.follow(source, config.syncTimeoutMs);
  },
  stop({ resolver }) {
    const repository = resolver.get(Tokens.PolicyRepository);
    runtimeOf(repository).service.close();
    (repository as { close?: () => void }).close?.();
  },
});

function newEngine(identities: IdentityAllocator, ipcache: DeferredIpCache, config: PolicyConfig, logger: Logger): PolicyEngine {
  return new PolicyEngine({ identities, ipcache, enforcement: config.enforcement, allowLocalhost: config.allowLocalhost, logger: logger.child({ component: 'policy-engine' }) });
}

/** What {@link policyIpCachePlugin} provides: the connection of policy's CIDR identities to the ipcache. */
export const PolicyIpCacheLink = defineToken<{ readonly connected: Promise<void> }>('cilia.policy.IpCacheLink');

/**
 * Hands the datapath's ipcache to policy. A plugin of its own because policy must start before
 * the datapath (see {@link DeferredIpCache}). It connects while the agent builds its services —
 * the plugin host builds every provided service, in dependency order, before any plugin starts —
 * so the CIDR identities policy restores at start already reach the real ipcache, which the
 * datapath then writes to its map with everything else it holds: after a restart no CIDR entry
 * is missing from the map, not even briefly.
 */
export const policyIpCachePlugin = definePlugin({
  name: '@cilia/policy-ipcache',
  version: pkg.version,
  apiVersion: '^1',
  description: "Writes policy's CIDR identities into the datapath's ipcache",
  provides: [PolicyIpCacheLink],
  requires: [Tokens.PolicyRepository, Tokens.IpCache],
  register(bind) {
    bind(PolicyIpCacheLink).toFactory((r) => ({ connected: runtimeOf(r.get(Tokens.PolicyRepository)).ipcache.connect(r.get(Tokens.IpCache)) }));
  },
  async start({ resolver }) {
    await resolver.get(PolicyIpCacheLink).connected;
  },
  stop({ resolver }) {
    runtimeOf(resolver.get(Tokens.PolicyRepository)).ipcache.disconnect();
  },
});
