// Codecs of the shared ABI in bpf/include/cilia/. The layout test checks each against the BTF
// of a compiled object, so a C change the TS side missed fails the tests.
import { struct, u16, u32, u64, u8 } from './codec.js';

/** `struct cilia_event_hdr` (bpf/include/cilia/events.h): the start of every event record. */
export const EventHeader = struct('cilia_event_hdr', {
  type: u8,
  subtype: u8,
  source: u16,
  ifindex: u32,
  tsNs: u64,
});

/** `enum cilia_event_type` */
export const EventType = {
  unspec: 0,
  drop: 1,
  trace: 2,
  policyVerdict: 3,
  l7: 4,
  debug: 5,
} as const;

/** `enum cilia_slot` (bpf/include/cilia/slots.h), keyed like @cilia/core's `DatapathSlot`. */
export const SlotIndex = {
  service: 0,
  policy: 1,
  'l7-redirect': 2,
  shaping: 3,
  forward: 4,
} as const;

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
} as const;

/** Number of slots (`CILIA_SLOT_MAX`). */
export const SLOT_COUNT = 5;
