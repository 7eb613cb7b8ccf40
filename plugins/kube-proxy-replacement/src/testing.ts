// Test support: this plugin's objects built from source and loaded against the base objects'
// pinned maps (@cilia/datapath/testing), with the constants the plugin sets, and its service
// slot programs installed where the agent installs them.
import type { BpfObject } from '@cilia/bpf';
import { compileBpf } from '@cilia/bpf/testing';
import { datapathMaps as m } from '@cilia/datapath';
import type { Datapath } from '@cilia/datapath/testing';
import { LB_PROGRAMS } from './objects.js';

const SRC = new URL('../bpf/', import.meta.url);

/** lb.o loaded into `dp`'s pin root, its programs in the service slots. */
export function loadLbObject(dp: Datapath, constants: Record<string, number> = {}): BpfObject {
  const lb = dp.load(compileBpf('lb', { srcDir: SRC }), { LB_MAGLEV_TABLE_SIZE: 251, ...constants });
  const slots = dp.lxc.programArray('cilia_tc_slots');
  for (const [program, { attach }] of Object.entries(LB_PROGRAMS)) slots.set(m.slotIndex(attach, 'service'), lb.program(program));
  return lb;
}
