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
    .describe("MTU of endpoint veths; \"auto\" takes the egress device's MTU (1500 without one) minus the overhead of the overlay plugin, if any"),
  bigTcp: z
    .union([z.boolean(), z.literal('auto')])
    .default(false)
    .describe(
      'IPv4 BIG TCP: GSO and GRO packets of up to 192 KiB on the egress device and endpoint veths, a third of the per-packet work at high throughput. Needs kernel ≥ 6.3, an egress device that segments them (tso_max_size ≥ 196608), and native routing or an overlay that carries them (VXLAN and Geneve do: their eBPF writes the outer headers with lengths of 0, as the kernel does for BIG TCP, and strips them on arrival; the egress device\'s GRO then stays at 64 KiB). true: required (the agent refuses to start without them); "auto": used where possible; false: off (an egress device left above 64 KiB is set back)',
    ),
  monitorAggregation: z
    .enum(['none', 'lowest', 'low', 'medium', 'maximum'])
    .default('medium')
    .describe(
      "Which forwarded packets the datapath reports as trace events (Cilium's monitor-aggregation): none = every one; lowest, low = every one but at receive points; medium = a connection's first packet and packets carrying SYN, FIN or RST, so the event rate follows connections, not packets; maximum = a connection's first packet only. Drops and policy verdicts are always reported",
    ),
  policy: z
    .strictObject({
      maxEntries: z
        .number()
        .int()
        .min(1)
        .max(16_777_216)
        .default(262_144)
        .describe('Capacity of the policy map (cilia_policy), shared by all endpoints; fixed once the map is pinned (a different value fails the load until the pin is removed)'),
      maxEntriesPerEndpoint: z
        .number()
        .int()
        .min(1)
        .default(16_384)
        .describe("Policy map entries one endpoint may use; an endpoint needing more fails closed (its traffic is dropped) and `cilia status` names it"),
    })
    .prefault({})
    .describe('Policy enforcement in the datapath (used when a policy repository is present)'),
  conntrack: z
    .strictObject({
      maxEntries: z
        .number()
        .int()
        .min(256)
        .max(16_777_216)
        .default(65_536)
        .describe(
          'Capacity of the connection tracking table (cilia_ct, an LRU hash shared by every endpoint and the node device). A full table evicts an entry to make room rather than failing; a connection that loses its entry has its next packet judged by policy as a new one (the datapath README says which entries go). Fixed once the map is pinned: a different value waits for the pin to be removed',
        ),
    })
    .prefault({})
    .describe('Connection tracking in the datapath'),
});

/** The validated `datapath:` section, defaults applied. */
export type DatapathConfig = z.infer<typeof datapathConfig>;
