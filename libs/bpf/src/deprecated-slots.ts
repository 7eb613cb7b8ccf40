// Cilia's slot numbers are @cilia/datapath's ABI module (`datapathMaps.SlotIndex`,
// `datapathMaps.AttachPointIndex`), not this generic binding's. These copies remain only while
// plugins/overlay-geneve/src/geneve.ts imports them from here; libs/datapath's layout test keeps
// them equal to the ABI module. Delete this file once nothing imports them.

/** @deprecated `datapathMaps.SlotIndex` from @cilia/datapath. */
export const SlotIndex = { service: 0, policy: 1, 'l7-redirect': 2, shaping: 3, forward: 4 } as const;

/** @deprecated `datapathMaps.AttachPointIndex` from @cilia/datapath. */
export const AttachPointIndex = {
  'from-container': 0,
  'to-container': 1,
  'from-host': 2,
  'to-host': 3,
  'from-netdev': 4,
  'to-netdev': 5,
  'xdp-netdev': 6,
  'cgroup-sock': 7,
} as const;
