/* SPDX-License-Identifier: Apache-2.0 */
/* Every ABI type of bpf/include/cilia/, kept in BTF so libs/bpf's layout test can compare the
 * TS codecs and constants with them. Add a line here for each new ABI struct or enum. */
#include <cilia/common.h>
#include <cilia/events.h>
#include <cilia/slots.h>

CILIA_BTF_ANCHOR(cilia_event_hdr);
CILIA_BTF_ENUM_ANCHOR(cilia_event_type);
CILIA_BTF_ENUM_ANCHOR(cilia_slot);
CILIA_BTF_ENUM_ANCHOR(cilia_attach_point);

char LICENSE[] SEC("license") = "GPL";
