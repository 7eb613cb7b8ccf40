import { createRequire } from 'node:module';
import { definePlugin, Tokens } from '@cilia/core';
import { geneveConfig, type GeneveConfig } from './config.js';
import { GENEVE_OBJECT, GENEVE_PROGRAMS, GeneveEncapsulation } from './geneve.js';

export { geneveConfig, type GeneveConfig } from './config.js';
export { GeneveEncapsulation, GENEVE_OBJECT, GENEVE_OVERHEAD, GENEVE_PROGRAMS, GENEVE_SLOTS, type GeneveEncapsulationOptions } from './geneve.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
const instances = new WeakMap<object, GeneveEncapsulation>();

/**
 * Pods across nodes over Geneve, encapsulated in eBPF: provides `Tokens.Encapsulation`, which
 * the node registry (@cilia/nodes) sets up for this node and keeps in step with the others; the
 * datapath lowers the pod MTU by its overhead. Depends on no other token, so the datapath may
 * ask it for that.
 */
export default definePlugin<GeneveConfig>({
  name,
  version,
  apiVersion: '^1',
  description: 'Geneve overlay encapsulated in eBPF (identity in the VNI) for pods across nodes',
  config: geneveConfig,
  provides: [Tokens.Encapsulation],
  // Loaded by the plugin itself in setup (its constants exist only then), which also puts the
  // receive program into the from-netdev pre hook (not a pipeline slot, so not listed here).
  bpf: [{ object: GENEVE_OBJECT, programs: { [GENEVE_PROGRAMS.forward]: { attach: 'from-container', slot: 'forward' } } }],
  register(bind, { config, agent, logger }) {
    bind(Tokens.Encapsulation).toFactory(() => {
      const encapsulation = new GeneveEncapsulation({ config, pinRoot: agent.bpfRoot, logger: logger.child({ component: 'geneve' }) });
      instances.set(config, encapsulation);
      return encapsulation;
    });
  },
  async stop({ config }) {
    await instances.get(config)?.close();
  },
});
