import { isIPv4 } from 'node:net';
import { z } from '@cilia/core';
import { LB_ALGORITHMS, MAGLEV_DEFAULT_TABLE_SIZE, maglevTableSizeProblem } from '@cilia/lb';

const range = z
  .string()
  .regex(/^\d{1,5}-\d{1,5}$/, 'must be FROM-TO, e.g. 30000-32767')
  .refine((v) => {
    const [lo, hi] = v.split('-').map(Number) as [number, number];
    return lo >= 1 && hi <= 65535 && lo <= hi;
  }, 'must be FROM-TO with 1 <= FROM <= TO <= 65535');

/** Settings of the load balancer (the `lb:` section). */
export const lbConfig = z.strictObject({
  algorithm: z
    .enum(LB_ALGORITHMS)
    .default('random')
    .describe('How a new connection picks a backend, unless its Service says otherwise (annotation service.cilium.io/lb-algorithm): random, or maglev (consistent hashing: every node picks the same backend for a flow)'),
  maglev: z
    .strictObject({
      tableSize: z
        .number()
        .default(MAGLEV_DEFAULT_TABLE_SIZE)
        .superRefine((v, ctx) => {
          const problem = maglevTableSizeProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .describe('Slots of each Maglev table (M): a prime from 251 to 131071, about 100 times the most backends a service has. The same on every node'),
      seed: z.int().min(0).max(0xffffffff).default(0).describe('Seed of the Maglev hashes. The same on every node, so they all pick the same backend for a flow'),
    })
    .default({ tableSize: MAGLEV_DEFAULT_TABLE_SIZE, seed: 0 }),
  nodePort: z
    .strictObject({
      range: range.default('30000-32767').describe('Node ports Services may use (Kubernetes: --service-node-port-range)'),
      addresses: z
        .array(z.string().refine((v) => isIPv4(v), 'must be an IPv4 address'))
        .default([])
        .describe("This node's addresses that serve NodePorts; empty: the node's IPv4 address"),
    })
    .default({ range: '30000-32767', addresses: [] }),
  socketLB: z
    .strictObject({
      enabled: z.boolean().default(true).describe('Translate connections to services when a socket connects or sends (cgroup hooks), not per packet'),
      hostNamespaceOnly: z
        .boolean()
        .default(false)
        .describe("Only for the host's own processes: pods' connections are then translated per packet, in the datapath"),
    })
    .default({ enabled: true, hostNamespaceOnly: false }),
  serviceProxyName: z
    .string()
    .default('')
    .describe('This proxy\'s name: Services labelled service.kubernetes.io/service-proxy-name with another value (or any, when empty) are left alone'),
});

/** The validated `lb:` section, defaults applied. */
export type LbConfig = z.infer<typeof lbConfig>;

/** `nodePort.range` as numbers. */
export function nodePortRange(config: LbConfig): [number, number] {
  const [lo, hi] = config.nodePort.range.split('-').map(Number) as [number, number];
  return [lo, hi];
}
