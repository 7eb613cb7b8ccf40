/** @cilia/ipam — host-scope IPAM, the agent's default `Ipam`. */
export { HostScopeIpam, IpamExhaustedError } from './host-scope-ipam.js';
export { hostScopeIpamPlugin, ipamConfig } from './plugin.js';
