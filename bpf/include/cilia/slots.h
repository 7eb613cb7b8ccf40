/* SPDX-License-Identifier: Apache-2.0 */
/* Tail-call slots: the index of each pipeline stage in an attach point's program array.
 * ABI shared with @cilia/core's `DatapathSlot` ('service' | 'policy' | 'l7-redirect' |
 * 'shaping' | 'forward'); append only, never renumber. */
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

/* The window of an attach point in cilia_tc_slots also has CILIA_SLOT_MAIN (13), CILIA_SLOT_PRE
 * (14) and CILIA_SLOT_RESUME (15), defined in maps.h: not stages of the slot pipeline, so not
 * in this enum. */

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
