import { createRequire } from 'node:module';
import { definePlugin, defineToken, Tokens } from '@cilia/core';
import { geneveConfig, type GeneveConfig } from './config.js';
import { GENEVE_OBJECT, GENEVE_PROGRAMS, GeneveEncapsulation } from './geneve.js';

export { geneveConfig, type GeneveConfig } from './config.js';
export { GeneveEncapsulation, GENEVE_OBJECT, GENEVE_OVERHEAD, GENEVE_PROGRAMS, type GeneveEncapsulationOptions } from './geneve.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
/** This plugin's own handle on its encapsulation (the kernel token carries only the interface). */
const Geneve = defineToken<GeneveEncapsulation>(`${name}.Geneve`);

/**
 * Pods across nodes over Geneve, encapsulated in eBPF: provides `Tokens.Encapsulation`, which
 * the node sync (@cilia/nodes) sets up for this node and keeps in step with the others; the
 * datapath lowers the pod MTU by its overhead. Its receive (from-netdev pre hook) and send
 * (from-container forward) programs are declared here and installed by the agent; their
 * constants come from this node's addresses and the host device, made just before.
 */
export default definePlugin<GeneveConfig>({
  name,
  version,
  apiVersion: '^1',
  description: 'Geneve overlay encapsulated in eBPF (identity in the VNI) for pods across nodes',
  config: geneveConfig,
  provides: [Tokens.Encapsulation, Geneve],
  requires: [Tokens.LocalNode],
  bpf: [
    {
      name: 'geneve',
      object: GENEVE_OBJECT,
      // Receive first, the forward slot last: by the time pods send into the tunnel, this node takes tunnel packets apart.
      programs: {
        [GENEVE_PROGRAMS.ingress]: { attach: 'from-netdev', slot: 'pre' },
        [GENEVE_PROGRAMS.forward]: { attach: 'from-container', slot: 'forward' },
      },
      constants: ({ resolver }) => resolver.get(Geneve).prepare(resolver.get(Tokens.LocalNode).get()),
    },
  ],
  register(bind, { config, logger, bpf }) {
    const geneve = new GeneveEncapsulation({ config, logger: logger.child({ component: 'geneve' }), object: () => bpf.object('geneve') });
    bind(Geneve).toConstant(geneve);
    bind(Tokens.Encapsulation).toConstant(geneve);
    // Handles only: the devices, programs, slots and routes stay (forwarding goes on).
    return { stop: () => geneve.close() };
  },
});
