import { createHash } from 'node:crypto';

/** Longest interface name Linux accepts (IFNAMSIZ − 1). */
const IFNAME_MAX = 15;

/**
 * Host-side veth name of an endpoint: `lxc` + the first 12 hex digits of the SHA-256 of its
 * attachment key, as Cilium names them. The key is `<containerId>/<interfaceName>` for CNI
 * attachments and `<namespace>/<name>` otherwise, so the name is stable across agent restarts
 * and re-creations of the same attachment, and fits in 15 characters.
 */
export function hostInterfaceName(attachmentKey: string): string {
  const name = 'lxc' + createHash('sha256').update(attachmentKey).digest('hex').slice(0, IFNAME_MAX - 3);
  return name;
}

/** The attachment key {@link hostInterfaceName} hashes. */
export function attachmentKey(request: { containerId?: string; interfaceName: string; namespace: string; name: string }): string {
  return request.containerId ? `${request.containerId}/${request.interfaceName}` : `${request.namespace}/${request.name}`;
}

/**
 * Name of the network namespace the agent creates for an endpoint that brings none:
 * `cilia_<namespace>_<name>` under /run/netns (visible to `ip netns list`). Kubernetes names
 * never contain `_`, so the name cannot collide between two namespace/name pairs.
 */
export function agentNetnsName(namespace: string, name: string): string {
  return `cilia_${namespace}_${name}`;
}

/** IPAM owner string of an endpoint's lease. */
export function leaseOwner(id: number): string {
  return `endpoint:${id}`;
}

/** The endpoint id of an IPAM owner string made by {@link leaseOwner}, if it is one. */
export function leaseOwnerId(owner: string): number | undefined {
  const m = /^endpoint:(\d+)$/.exec(owner);
  return m ? Number(m[1]) : undefined;
}
