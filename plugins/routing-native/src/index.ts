import { createRequire } from 'node:module';
import { definePlugin, Tokens, z } from '@cilia/core';
import { NativeRouting } from './native.js';

export { NativeRouting, type NativeRoutingOptions } from './native.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

/** The `routing-native:` section: nothing to set yet (the routes follow the node registry). */
export const nativeRoutingConfig = z.strictObject({});
export type NativeRoutingConfig = z.infer<typeof nativeRoutingConfig>;

/**
 * Pods across nodes by native routing: provides `Tokens.Encapsulation` (`mode: native`, no
 * overhead), which the node sync (@cilia/nodes) keeps in step with the other nodes.
 */
export default definePlugin<NativeRoutingConfig>({
  name,
  version,
  apiVersion: '^1',
  description: "Native routing: routes to other nodes' pod CIDRs via their node IPs (auto direct node routes)",
  config: nativeRoutingConfig,
  provides: [Tokens.Encapsulation],
  register(bind, { logger }) {
    const routing = new NativeRouting({ logger: logger.child({ component: 'native-routing' }) });
    bind(Tokens.Encapsulation).toConstant(routing);
    // Handles only: the routes stay (forwarding goes on).
    return { stop: () => routing.close() };
  },
});
