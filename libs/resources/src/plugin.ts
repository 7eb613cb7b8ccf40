import { join, resolve } from 'node:path';
import { definePlugin, Tokens, z, type ApiRoute } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { DEFAULT_MAX_MANIFEST_BYTES, formatInvalid, ManifestDirectorySource } from './manifest-source.js';

/** Settings of the manifest directory (the `manifests:` section). */
export const manifestsConfig = z.strictObject({
  directory: z
    .string()
    .min(1)
    .default('/etc/cilia/manifests')
    .describe(
      'Directory of Kubernetes-shaped YAML manifests (`*.yaml`, `*.yml`, subdirectories included) the agent watches. A relative path is taken from the agent\'s working directory.',
    ),
  debounceMs: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(100)
    .describe('Quiet time after a change before the directory is read again, so an editor\'s burst of writes is read once.'),
  resyncIntervalMs: z
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(10_000)
    .describe('Period of a full rescan that catches missed events and a directory created later; 0 turns it off.'),
  maxFileBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(DEFAULT_MAX_MANIFEST_BYTES)
    .describe('Largest manifest file read; a larger one is refused and reported (`GET /v1/manifests`, the log), changing nothing. Symlinks leading outside the directory are refused the same way.'),
});

/**
 * The standalone mode's default `ResourceSource`: a watched directory of manifests. Also
 * serves `GET /v1/manifests` (what the directory defines, and the files refused).
 */
export const manifestsPlugin = definePlugin({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'manifests',
  description: 'Standalone resources: Namespaces, Pods and policies from a watched directory of Kubernetes-shaped YAML',
  config: manifestsConfig,
  provides: [Tokens.ResourceSource, Tokens.ApiRoutes, Tokens.HealthReporters],
  register(bind, { config, agent, logger, resolver }) {
    const source = new ManifestDirectorySource({
      directory: resolve(config.directory),
      debounceMs: config.debounceMs,
      resyncIntervalMs: config.resyncIntervalMs,
      maxFileBytes: config.maxFileBytes,
      stateFile: join(agent.stateDir, 'resources', 'manifests.json'),
      logger,
    });
    bind(Tokens.ResourceSource).toConstant(source);
    const routes: ApiRoute[] = [{ method: 'GET', path: '/v1/manifests', summary: 'what the manifest directory defines, and the files refused', handler: () => ({ body: source.report() }) }];
    bind(Tokens.ApiRoutes).toConstant(routes);
    bind(Tokens.HealthReporters).toConstant({
      name: 'manifests',
      problems: () => source.report().invalid.map((i) => `invalid file ${formatInvalid(i)}; nothing changed because of it`),
    });
    // A plugin that took the ResourceSource over (Kubernetes, say) leaves the directory unwatched.
    const inUse = () => resolver.get(Tokens.ResourceSource) === source;
    return { start: async () => (inUse() ? source.start() : undefined), stop: () => source.stop() };
  },
});
