import type { BpfObject } from '@cilia/bpf';

/**
 * Sets the configured capacity of the datapath's shared maps (by name) on an object before it
 * loads, so a map is created with it whichever object — base, policy or a plugin's — loads first.
 * A map already pinned keeps its own size: BpfObject adopts it at load.
 */
export function applyMapSizes(obj: BpfObject, sizes: Readonly<Record<string, number>>): void {
  const present = new Set(obj.mapNames());
  for (const [name, size] of Object.entries(sizes)) if (present.has(name)) obj.setMaxEntries(name, size);
}
