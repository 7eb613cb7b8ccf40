import { z } from '@cilia/core';

const IFNAME = /^[^\s/:]{1,15}$/;

/** Settings of the Geneve overlay (the `overlay-geneve:` section). */
export const geneveConfig = z.strictObject({
  port: z
    .int()
    .min(1)
    .max(65535)
    .default(6081)
    .describe('UDP port of the overlay on every node (6081: IANA, Linux and Cilium). All nodes must agree.'),
  device: z
    .union([z.literal('auto'), z.string().regex(IFNAME, 'must be "auto" or an interface name (1-15 characters, no spaces, "/" or ":")')])
    .default('auto')
    .describe('Underlay device tunnel packets arrive on; "auto": the device holding the node\'s tunnel address, else the default route\'s'),
  hostDevice: z
    .string()
    .regex(IFNAME, 'must be an interface name (1-15 characters, no spaces, "/" or ":")')
    .default('cilia_geneve')
    .describe("Device the node's own traffic to other nodes' pods is routed into, to leave encapsulated: one side of a veth pair the plugin creates (the other is named after it, ending in _p)"),
});

/** The validated `overlay-geneve:` section, defaults applied. */
export type GeneveConfig = z.infer<typeof geneveConfig>;
