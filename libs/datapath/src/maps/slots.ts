// The tail-call slot table of the tc attach points and the base programs' names
// (bpf/include/cilia/slots.h and maps.h, bpf/README.md). Every slot number of the TS side is
// here; test/bpf/layout.test.ts checks them against the enums of the compiled objects.
import type { AttachPoint, DatapathSlot } from '@cilia/core';

/** `enum cilia_slot`: the stages of an attach point's pipeline, keyed like @cilia/core's `DatapathSlot`. */
export const SlotIndex = {
  service: 0,
  policy: 1,
  'l7-redirect': 2,
  shaping: 3,
  forward: 4,
} as const satisfies Record<DatapathSlot, number>;

/** Number of pipeline stages (`CILIA_SLOT_MAX`). */
export const SLOT_COUNT = Object.keys(SlotIndex).length;

/** `enum cilia_attach_point`, keyed like @cilia/core's `AttachPoint`. */
export const AttachPointIndex = {
  'from-container': 0,
  'to-container': 1,
  'from-host': 2,
  'to-host': 3,
  'from-netdev': 4,
  'to-netdev': 5,
  'xdp-netdev': 6,
  'cgroup-sock': 7,
} as const satisfies Record<AttachPoint, number>;

/** Number of attach points (`CILIA_AP_MAX`). */
export const ATTACH_POINT_COUNT = Object.keys(AttachPointIndex).length;

/**
 * `enum cilia_slot_window`: the rest of an attach point's window in `cilia_tc_slots`, beside
 * the stages — the base object's resume program, and the pre hook (from-netdev only): the entry
 * program tail-calls `pre` before it looks at a packet; a pre program hands back what it does
 * not take through `main`, where the loader puts the base program without the hook.
 */
export const SlotWindow = { main: 13, pre: 14, resume: 15 } as const;

/** Indices per attach point in `cilia_tc_slots` (`CILIA_SLOTS_PER_AP`). */
export const SLOTS_PER_ATTACH_POINT = 16;
/** Index (within an attach point's window) of the base object's resume program. */
export const SLOT_RESUME = SlotWindow.resume;
/** The pre hook's index within the window. */
export const SLOT_PRE = SlotWindow.pre;
/** Where a pre program hands a packet back: the base program without the hook. */
export const SLOT_MAIN = SlotWindow.main;

/** The attach points whose base programs run tc slots. */
export type TcAttachPoint = Extract<AttachPoint, 'from-container' | 'to-container' | 'from-netdev' | 'to-netdev'>;

/** Index of `slot` of `attachPoint` in `cilia_tc_slots` (or of its resume program, pre hook, main program). */
export function slotIndex(attachPoint: TcAttachPoint, slot: DatapathSlot | keyof typeof SlotWindow): number {
  const within = slot in SlotWindow ? SlotWindow[slot as keyof typeof SlotWindow] : SlotIndex[slot as DatapathSlot];
  return AttachPointIndex[attachPoint] * SLOTS_PER_ATTACH_POINT + within;
}

/** Base objects (`<name>.o` in @cilia/datapath's dist/bpf), their programs and where they go. */
export const BASE_PROGRAMS = {
  lxc: {
    'from-container': { program: 'cil_from_container', resume: 'cil_from_container_resume', tc: 'ingress' },
    'to-container': { program: 'cil_to_container', resume: 'cil_to_container_resume', tc: 'egress' },
  },
  host: {
    'from-netdev': { program: 'cil_from_netdev', resume: 'cil_from_netdev_resume', main: 'cil_from_netdev_main', tc: 'ingress' },
    'to-netdev': { program: 'cil_to_netdev', resume: 'cil_to_netdev_resume', tc: 'egress' },
  },
} as const satisfies Record<
  string,
  Partial<Record<TcAttachPoint, { program: string; resume: string; main?: string; tc: 'ingress' | 'egress' }>>
>;

/**
 * `enum cilia_mark` (bpf/include/cilia/mark.h): skb->mark as the policy slot, the l7-redirect
 * slot and the L7 proxy use it. `toProxy` carries the proxy port in bits 16-31; `fromProxy`
 * (the proxy's upstream sockets, SO_MARK) the original source's identity, see `fromProxyMark`.
 * TO_PROXY packets are delivered locally by an fwmark rule (`toProxy/magicMask` → table
 * `proxyRouteTable`, `local default dev lo`) at priority `proxyRulePriority`.
 */
export const ProxyMark = {
  magicMask: 0x0f00,
  toProxy: 0x0200,
  fromProxy: 0x0b00,
  proxyRouteTable: 2004,
  proxyRulePriority: 9,
} as const;

/** The SO_MARK of a proxy upstream socket carrying `identity` (24 bits: low 16 in bits 16-31, high 8 in bits 0-7). */
export function fromProxyMark(identity: number): number {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffff) throw new RangeError(`identity ${identity} does not fit a proxy mark (24 bits)`);
  return (((identity & 0xffff) << 16) | ProxyMark.fromProxy | (identity >>> 16)) >>> 0;
}
