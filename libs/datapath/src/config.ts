import { z } from '@cilia/core';

const IFNAME = /^[^\s/:]{1,15}$/;

/** Settings of the core datapath (the `datapath:` section). */
export const datapathConfig = z.strictObject({
  masquerade: z
    .boolean()
    .default(true)
    .describe("Source-NAT pod traffic leaving the node to the egress device's address"),
  egressDevice: z
    .string()
    .refine((v) => v === 'auto' || IFNAME.test(v), { message: 'must be "auto" or an interface name (1-15 characters, no spaces, "/" or ":")' })
    .default('auto')
    .describe('Device pod traffic leaves the node through; "auto" is the device of the default IPv4 route'),
  mtu: z
    .union([z.literal('auto'), z.number().int().min(576).max(65535)])
    .default('auto')
    .describe("MTU of endpoint veths; \"auto\" takes the egress device's MTU (1500 without one)"),
});

/** The validated `datapath:` section, defaults applied. */
export type DatapathConfig = z.infer<typeof datapathConfig>;
