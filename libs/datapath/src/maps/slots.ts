// The tail-call slot table of the tc attach points and the base programs' names
// (bpf/include/cilia/maps.h, bpf/README.md).
import { AttachPointIndex, SlotIndex } from '@cilia/bpf';
import type { AttachPoint, DatapathSlot } from '@cilia/core';

/** Indices per attach point in `cilia_tc_slots`. */
export const SLOTS_PER_ATTACH_POINT = 16;
/** Index (within an attach point's window) of the base object's resume program. */
export const SLOT_RESUME = 15;

/** The attach points whose base programs run tc slots. */
export type TcAttachPoint = Extract<AttachPoint, 'from-container' | 'to-container' | 'from-netdev' | 'to-netdev'>;

/** Index of `slot` of `attachPoint` in `cilia_tc_slots` (or of its resume program). */
export function slotIndex(attachPoint: TcAttachPoint, slot: DatapathSlot | 'resume'): number {
  const within = slot === 'resume' ? SLOT_RESUME : SlotIndex[slot];
  return AttachPointIndex[attachPoint] * SLOTS_PER_ATTACH_POINT + within;
}

/** Base objects (`<name>.o` in @cilia/datapath's dist/bpf), their programs and where they go. */
export const BASE_PROGRAMS = {
  lxc: {
    'from-container': { program: 'cil_from_container', resume: 'cil_from_container_resume', tc: 'ingress' },
    'to-container': { program: 'cil_to_container', resume: 'cil_to_container_resume', tc: 'egress' },
  },
  host: {
    'from-netdev': { program: 'cil_from_netdev', resume: 'cil_from_netdev_resume', tc: 'ingress' },
    'to-netdev': { program: 'cil_to_netdev', resume: 'cil_to_netdev_resume', tc: 'egress' },
  },
} as const satisfies Record<
  string,
  Partial<Record<TcAttachPoint, { program: string; resume: string; tc: 'ingress' | 'egress' }>>
>;
