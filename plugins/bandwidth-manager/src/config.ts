import { z } from '@cilia/core';

const IFNAME = /^[^\s/:]{1,15}$/;

/** Settings of the bandwidth manager (the `bandwidth:` section). */
export const bandwidthConfig = z.strictObject({
  enabled: z
    .union([z.boolean(), z.literal('auto')])
    .default('auto')
    .describe(
      'Pods\' bandwidth annotations enforced: egress with EDT (needs the fq qdisc, sch_fq, on the node devices), ingress with an eBPF token bucket (no qdisc). ' +
        'true: both, and the agent refuses to start (exit 2) on a kernel without sch_fq; auto: ingress, and egress where sch_fq exists; false: neither',
    ),
  devices: z
    .array(z.string().regex(IFNAME, 'must be an interface name (1-15 characters, no spaces, "/" or ":")'))
    .default([])
    .describe('Node devices that get fq for egress pacing; empty: the device of the default IPv4 route (where the datapath attaches by default: keep it equal to datapath.egressDevice)'),
  horizonMs: z.int().min(1).max(60_000).default(2000).describe('Egress: a packet whose departure time lies further ahead than this is dropped (EDT_HORIZON), as Cilium\'s 2 s'),
  ingressBurstMs: z
    .int()
    .min(1)
    .max(10_000)
    .default(300)
    .describe(
      'Ingress: the burst a pod may receive above its rate, as time at that rate (never below ingressMinBurstBytes). Keep it above TCP\'s minimum retransmission timeout (200 ms): ' +
        'a policer has no queue to slow a sender down, so a sender that lost a burst waits out that timeout, and the tokens of the wait must still be there when it sends again',
    ),
  ingressMinBurstBytes: z
    .int()
    .min(1500)
    .max(64 * 1024 * 1024)
    .default(256 * 1024)
    .describe('Ingress: the smallest burst, in bytes; keep it above a few GSO packets (64 KiB each), which arrive whole'),
  bbr: z.boolean().default(false).describe("Pods' TCP uses BBR (net.ipv4.tcp_congestion_control in each pod's namespace), which paces itself; with egress EDT on, the host's fq keeps that pacing"),
});

/** The validated `bandwidth:` section, defaults applied. */
export type BandwidthConfig = z.infer<typeof bandwidthConfig>;
