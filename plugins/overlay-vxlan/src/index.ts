import { createRequire } from 'node:module';
import { definePlugin, defineToken, Tokens } from '@cilia/core';
import { vxlanConfig, type VxlanConfig } from './config.js';
import { VXLAN_OBJECT, VXLAN_PROGRAMS, VxlanEncapsulation } from './vxlan.js';

export { vxlanConfig, type VxlanConfig } from './config.js';
export { VxlanEncapsulation, vxlanDeviceMac, VXLAN_OBJECT, VXLAN_OVERHEAD, VXLAN_PROGRAMS, type VxlanEncapsulationOptions } from './vxlan.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
/** This plugin's own handle on its encapsulation (the kernel token carries only the interface). */
const Vxlan = defineToken<VxlanEncapsulation>(`${name}.Vxlan`);

/**
 * Pods across nodes over VXLAN: provides `Tokens.Encapsulation`, which the node sync
 * (@cilia/nodes) sets up for this node and keeps in step with the others; the datapath lowers
 * the pod MTU by its overhead. Its receive (from-netdev pre hook) and send (from-container
 * forward) programs are declared here and installed by the agent; their constants come from
 * this node's addresses and the VXLAN device, made just before.
 */
export default definePlugin<VxlanConfig>({
  name,
  version,
  apiVersion: '^1',
  description: 'VXLAN overlay (external/collect_md device, identity in the VNI) for pods across nodes',
  config: vxlanConfig,
  provides: [Tokens.Encapsulation, Vxlan],
  requires: [Tokens.LocalNode],
  bpf: [
    {
      name: 'vxlan',
      object: VXLAN_OBJECT,
      // Receive first, the forward slot last: by the time pods send into the tunnel, this node takes tunnel packets apart.
      programs: {
        [VXLAN_PROGRAMS.underlay]: { attach: 'from-netdev', slot: 'pre' },
        [VXLAN_PROGRAMS.forward]: { attach: 'from-container', slot: 'forward' },
      },
      constants: ({ resolver }) => resolver.get(Vxlan).prepare(resolver.get(Tokens.LocalNode).get()),
    },
  ],
  register(bind, { config, logger, bpf }) {
    const vxlan = new VxlanEncapsulation({ config, logger: logger.child({ component: 'vxlan' }), object: () => bpf.object('vxlan') });
    bind(Vxlan).toConstant(vxlan);
    bind(Tokens.Encapsulation).toConstant(vxlan);
    // Handles only: the device, its programs, the slots and the routes stay (forwarding goes on).
    return { stop: () => vxlan.close() };
  },
});
