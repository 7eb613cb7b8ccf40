/* SPDX-License-Identifier: Apache-2.0 */
/* Tail-call slots: the index of each pipeline stage in an attach point's program array.
 * ABI shared with @cilia/core's `DatapathSlot` ('service' | 'policy' | 'l7-redirect' |
 * 'shaping' | 'forward'); append only, never renumber. The TS mirrors are in
 * libs/datapath/src/maps/slots.ts, checked against these enums (anchored in BTF by
 * bpf/lib/slots.h) by libs/datapath/test/bpf/layout.test.ts. */
#ifndef CILIA_SLOTS_H
#define CILIA_SLOTS_H

enum cilia_slot {
	CILIA_SLOT_SERVICE = 0,
	CILIA_SLOT_POLICY = 1,
	CILIA_SLOT_L7_REDIRECT = 2,
	CILIA_SLOT_SHAPING = 3,
	CILIA_SLOT_FORWARD = 4,
	CILIA_SLOT_MAX,
};

/* The rest of an attach point's window in cilia_tc_slots (index = attach point *
 * CILIA_SLOTS_PER_AP + slot, maps.h): not stages of the slot pipeline, but as much ABI — pinned
 * program arrays hold these indices across agent upgrades, so never renumber them.
 *   RESUME  the base object's resume program: where a slot program hands the packet back
 *   PRE     a hook in front of the whole base program (from-netdev only so far: a tunnel's
 *           receive program), which the entry program tail-calls before it parses anything
 *   MAIN    the base program without the hook: where a pre program hands back what it does
 *           not take */
enum cilia_slot_window {
	CILIA_SLOT_MAIN = 13,
	CILIA_SLOT_PRE = 14,
	CILIA_SLOT_RESUME = 15,
	CILIA_SLOTS_PER_AP = 16, /* indices per attach point */
};

/* Attach points, in the order @cilia/core's `AttachPoint` lists them. */
enum cilia_attach_point {
	CILIA_AP_FROM_CONTAINER = 0,
	CILIA_AP_TO_CONTAINER = 1,
	CILIA_AP_FROM_HOST = 2,
	CILIA_AP_TO_HOST = 3,
	CILIA_AP_FROM_NETDEV = 4,
	CILIA_AP_TO_NETDEV = 5,
	CILIA_AP_XDP_NETDEV = 6,
	CILIA_AP_CGROUP_SOCK = 7,
	CILIA_AP_MAX,
};

#endif /* CILIA_SLOTS_H */
