import { join } from 'node:path';
import { definePlugin, Tokens } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { OwnedPodsFile } from './owned-pods.js';
import { PodEndpointController } from './pod-endpoints.js';

const controllers = new WeakMap<object, PodEndpointController>();

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
  register() {
    // Provides nothing: it only acts, from start to stop.
  },
  async start(context) {
    const controller = new PodEndpointController({
      source: context.resolver.get(Tokens.ResourceSource),
      endpoints: context.resolver.get(Tokens.EndpointManager),
      logger: context.logger,
      owned: new OwnedPodsFile(join(context.agent.stateDir, 'resources', 'pod-endpoints.json')),
    });
    controllers.set(context, controller);
    await controller.start();
  },
  async stop(context) {
    await controllers.get(context)?.stop();
    controllers.delete(context);
  },
});
