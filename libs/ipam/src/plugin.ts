import { join } from 'node:path';
import { definePlugin, Tokens, z } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { parsePrefix } from './cidr.js';
import { HostScopeIpam } from './host-scope-ipam.js';

const cidr = z.string().superRefine((value, ctx) => {
  try {
    parsePrefix(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** Settings of host-scope IPAM (the `ipam:` section). */
export const ipamConfig = z.strictObject({
  podCIDRs: z
    .array(cidr)
    .min(1)
    .default(['10.200.0.0/24'])
    .describe("This node's pod CIDRs (IPv4 and/or IPv6). Each must be unique to the node: host-scope IPAM does not coordinate with other nodes."),
});

/** The agent's default `Ipam` provider; a cloud IPAM plugin replaces it with `replaces: [Tokens.Ipam]`. */
export const hostScopeIpamPlugin = definePlugin({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'ipam',
  description: "Host-scope IPAM: pod addresses from this node's CIDRs, leases kept in the state directory",
  config: ipamConfig,
  provides: [Tokens.Ipam],
  register(bind, { config, agent }) {
    bind(Tokens.Ipam).toFactory(() => new HostScopeIpam(config.podCIDRs, join(agent.stateDir, 'ipam', 'leases.json')));
  },
});
