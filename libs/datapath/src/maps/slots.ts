// The tail-call slot table of the tc attach points and the base programs' names
// (bpf/include/cilia/maps.h, bpf/README.md).
import { AttachPointIndex, SlotIndex } from '@cilia/bpf';
import type { AttachPoint, DatapathSlot } from '@cilia/core';

/** Indices per attach point in `cilia_tc_slots`. */
export const SLOTS_PER_ATTACH_POINT = 16;
/** Index (within an attach point's window) of the base object's resume program. */
export const SLOT_RESUME = 15;
/**
 * The pre hook (from-netdev only): the entry program tail-calls `pre` before it looks at a
 * packet; a pre program hands back what it does not take through `main`, where the loader puts
 * the base program without the hook.
 */
export const SLOT_PRE = 14;
export const SLOT_MAIN = 13;

const WINDOW_EXTRAS = { resume: SLOT_RESUME, pre: SLOT_PRE, main: SLOT_MAIN } as const;

/** The attach points whose base programs run tc slots. */
export type TcAttachPoint = Extract<AttachPoint, 'from-container' | 'to-container' | 'from-netdev' | 'to-netdev'>;

/** Index of `slot` of `attachPoint` in `cilia_tc_slots` (or of its resume program, pre hook, main program). */
export function slotIndex(attachPoint: TcAttachPoint, slot: DatapathSlot | keyof typeof WINDOW_EXTRAS): number {
  const within = slot in WINDOW_EXTRAS ? WINDOW_EXTRAS[slot as keyof typeof WINDOW_EXTRAS] : SlotIndex[slot as DatapathSlot];
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
