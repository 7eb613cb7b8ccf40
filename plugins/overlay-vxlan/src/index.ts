import { createRequire } from 'node:module';
import { definePlugin, Tokens } from '@cilia/core';
import { vxlanConfig, type VxlanConfig } from './config.js';
import { VXLAN_OBJECT, VxlanEncapsulation } from './vxlan.js';

export { vxlanConfig, type VxlanConfig } from './config.js';
export { VxlanEncapsulation, vxlanDeviceMac, VXLAN_OBJECT, VXLAN_OVERHEAD, type VxlanEncapsulationOptions } from './vxlan.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
const instances = new WeakMap<object, VxlanEncapsulation>();

/**
 * Pods across nodes over VXLAN: provides `Tokens.Encapsulation`, which the node registry
 * (@cilia/nodes) sets up for this node and keeps in step with the others; the datapath lowers
 * the pod MTU by its overhead. Depends on no other token, so the datapath may ask it for that.
 */
export default definePlugin<VxlanConfig>({
  name,
  version,
  apiVersion: '^1',
  description: 'VXLAN overlay (external/collect_md device, identity in the VNI) for pods across nodes',
  config: vxlanConfig,
  provides: [Tokens.Encapsulation],
  // Declared for what the plugin ships; it loads the object itself in setup, because its
  // constants (the device's ifindex, this node's tunnel endpoint) exist only then.
  bpf: [{ object: VXLAN_OBJECT, programs: { cil_vxlan_forward: { attach: 'from-container', slot: 'forward' } } }],
  register(bind, { config, agent, logger }) {
    bind(Tokens.Encapsulation).toFactory(() => {
      const encapsulation = new VxlanEncapsulation({ config, pinRoot: agent.bpfRoot, logger: logger.child({ component: 'vxlan' }) });
      instances.set(config, encapsulation);
      return encapsulation;
    });
  },
  async stop({ config }) {
    await instances.get(config)?.close();
  },
});
