import { z } from '@cilia/core';

const IFNAME = /^[^\s/:]{1,15}$/;

/** Settings of the VXLAN overlay (the `overlay-vxlan:` section). */
export const vxlanConfig = z.strictObject({
  port: z
    .int()
    .min(1)
    .max(65535)
    .default(8472)
    .describe('UDP port of the overlay on every node (8472: Linux and Cilium; 4789: IANA). All nodes must agree.'),
  device: z
    .string()
    .regex(IFNAME, 'must be an interface name (1-15 characters, no spaces, "/" or ":")')
    .default('cilia_vxlan')
    .describe('Name of the VXLAN device (external mode) the plugin creates'),
});

/** The validated `overlay-vxlan:` section, defaults applied. */
export type VxlanConfig = z.infer<typeof vxlanConfig>;
