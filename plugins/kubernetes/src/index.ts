import { createRequire } from 'node:module';
import { definePlugin, Tokens, z } from '@cilia/core';
import { CiliumIdentities } from '@cilia/identity';
import { KubeCiliumIdentityStore, KubeClient, KubernetesResourceSource, loadKubeConfig } from '@cilia/k8s';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

/** The `kubernetes:` section. */
export const kubernetesConfig = z.strictObject({
  kubeconfig: z
    .string()
    .default('')
    .describe(
      'Path of a kubeconfig (its current context, or `context`). Empty: the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT, the token and CA under /var/run/secrets/kubernetes.io/serviceaccount), as in the DaemonSet.',
    ),
  context: z.string().default('').describe('The kubeconfig context to use; empty: its current context.'),
  retry: z
    .strictObject({
      initialMs: z.number().int().min(10).max(60_000).default(500).describe('First delay before a failed list or watch is tried again; doubles each time.'),
      maxMs: z.number().int().min(100).max(600_000).default(30_000).describe('Longest delay between attempts (also how often a kind whose CRD is missing is looked for).'),
    })
    .default({ initialMs: 500, maxMs: 30_000 }),
  watchTimeoutSeconds: z
    .number()
    .int()
    .min(5)
    .max(3600)
    .default(300)
    .describe('The API server ends each watch after this long; the agent resumes it from its resourceVersion.'),
});

export type KubernetesConfig = z.infer<typeof kubernetesConfig>;

/**
 * Kubernetes mode: the agent's `ResourceSource` becomes the API server — this node's Pods,
 * Namespaces, Nodes, Services, EndpointSlices, NetworkPolicies and Cilium's
 * CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies, followed by informers (list,
 * watch from the resourceVersion, bookmarks, re-list on 410 Gone, back-off) — taking over from
 * the manifest directory.
 */
export default definePlugin<KubernetesConfig>({
  name,
  version,
  apiVersion: '^1',
  configKey: 'kubernetes',
  description: 'Kubernetes mode: Pods, Namespaces, Services, EndpointSlices, Nodes and policies from the API server instead of a manifest directory',
  config: kubernetesConfig,
  provides: [Tokens.ResourceSource, Tokens.HealthReporters, CiliumIdentities],
  replaces: [Tokens.ResourceSource],
  register(bind, { config, agent, logger }) {
    let source: KubernetesResourceSource | undefined;
    let client: KubeClient | undefined;
    // Built when first resolved (the kubeconfig is read then, not while registering).
    const connect = () => (client ??= new KubeClient(loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context })));
    const build = () =>
      (source ??= new KubernetesResourceSource({
        client: connect(),
        nodeName: agent.nodeName,
        logger: logger.child({ component: 'kubernetes' }),
        retryInitialMs: config.retry.initialMs,
        retryMaxMs: config.retry.maxMs,
        watchTimeoutSeconds: config.watchTimeoutSeconds,
      }));
    bind(Tokens.ResourceSource).toFactory(build);
    // For identity.mode: crd (the identity allocator follows and creates them; it stops them).
    bind(CiliumIdentities).toFactory(
      () =>
        new KubeCiliumIdentityStore({
          client: connect(),
          logger: logger.child({ component: 'kubernetes' }),
          retryInitialMs: config.retry.initialMs,
          retryMaxMs: config.retry.maxMs,
          watchTimeoutSeconds: config.watchTimeoutSeconds,
        }),
    );
    bind(Tokens.HealthReporters).toConstant({ name: 'kubernetes', problems: () => source?.problems() ?? [] });
    return {
      start: () => {
        logger.info({ server: build().name }, 'following the Kubernetes API server');
      },
      stop: () => source?.stop(),
    };
  },
});
