import { join } from 'node:path';
import { definePlugin, Tokens } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { OwnedPodsFile } from './owned-pods.js';
import { PodEndpointController } from './pod-endpoints.js';

/**
 * The pod → endpoint controller as a default plugin: endpoints follow the Pods of whatever
 * `ResourceSource` the agent has (the manifest directory by default).
 */
export const podEndpointsPlugin = definePlugin({
  name: '@cilia/pod-endpoints',
  version: pkg.version,
  apiVersion: '^1',
  description: 'Endpoints follow Pods: created, relabelled and deleted as Pods come, change and go (from @cilia/resources)',
  requires: [Tokens.ResourceSource, Tokens.EndpointManager],
  register(_bind, { resolver, logger, agent }) {
    // Provides nothing: it only acts, from start to stop.
    let controller: PodEndpointController | undefined;
    return {
      async start() {
        controller = new PodEndpointController({
          source: resolver.get(Tokens.ResourceSource),
          endpoints: resolver.get(Tokens.EndpointManager),
          logger,
          owned: new OwnedPodsFile(join(agent.stateDir, 'resources', 'pod-endpoints.json')),
        });
        await controller.start();
      },
      stop: () => controller?.stop(),
    };
  },
});
