import type { Cidr, IpCacheEntry, NodeInfo } from '@cilia/core';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A node as stored under `nodes/v1/<cluster>/<name>`: its `NodeInfo` and when it registered. */
export interface RegisteredNode extends NodeInfo {
  /** ISO time the agent registered the node (for AGE). */
  readonly registeredAt: string;
}

export function encodeNode(node: RegisteredNode): Uint8Array {
  return encoder.encode(JSON.stringify(node));
}

/** Parses a stored node; undefined (and the reason) when it is not one. */
export function decodeNode(value: Uint8Array): RegisteredNode | string {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(value));
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  const n = raw as Partial<RegisteredNode> | null;
  if (!n || typeof n !== 'object') return 'not an object';
  if (typeof n.name !== 'string' || n.name === '') return 'name: missing';
  if (!Array.isArray(n.podCidrs) || !n.podCidrs.every((c) => typeof c === 'string')) return 'podCidrs: not a list of prefixes';
  for (const field of ['ipv4', 'ipv6', 'tunnelEndpoint', 'registeredAt'] as const) {
    if (n[field] !== undefined && typeof n[field] !== 'string') return `${field}: not a string`;
  }
  return {
    name: n.name,
    podCidrs: [...n.podCidrs],
    ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
    ...(n.ipv6 ? { ipv6: n.ipv6 } : {}),
    ...(n.tunnelEndpoint ? { tunnelEndpoint: n.tunnelEndpoint } : {}),
    registeredAt: n.registeredAt ?? new Date(0).toISOString(),
  };
}

/**
 * The value under `ip/v1/<cluster>/<ip>`, shaped like Cilium's IPIdentityPair (IP, Mask,
 * HostIP = tunnel endpoint, ID, Key = encryption key index, K8sNamespace and K8sPodName of a
 * pod's address) plus the owning node's name.
 */
interface IpIdentityPair {
  IP: string;
  Mask: number | null;
  HostIP: string;
  ID: number;
  Key: number;
  Metadata: string;
  K8sNamespace?: string;
  K8sPodName?: string;
  NodeName: string;
}

/** The key suffix of a prefix: the bare IP for a host prefix, the CIDR otherwise. */
export function ipKeySuffix(prefix: Cidr): string {
  return prefix.endsWith('/32') || prefix.endsWith('/128') ? prefix.slice(0, prefix.lastIndexOf('/')) : prefix;
}

export function encodeIpEntry(entry: IpCacheEntry, node: string, tunnelEndpoint: string | undefined): Uint8Array {
  const slash = entry.prefix.lastIndexOf('/');
  const ip = entry.prefix.slice(0, slash);
  const len = Number(entry.prefix.slice(slash + 1));
  const host = ip.includes(':') ? len === 128 : len === 32;
  const pair: IpIdentityPair = {
    IP: ip,
    Mask: host ? null : len,
    HostIP: tunnelEndpoint ?? '',
    ID: entry.identity,
    Key: 0,
    Metadata: '',
    ...(entry.namespace ? { K8sNamespace: entry.namespace } : {}),
    ...(entry.podName ? { K8sPodName: entry.podName } : {}),
    NodeName: node,
  };
  return encoder.encode(JSON.stringify(pair));
}

/** Parses a stored ipcache pair into a `kvstore` entry; a string says why it is not one. */
export function decodeIpEntry(value: Uint8Array): IpCacheEntry | string {
  let p: Partial<IpIdentityPair> | null;
  try {
    p = JSON.parse(decoder.decode(value)) as Partial<IpIdentityPair> | null;
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (!p || typeof p !== 'object') return 'not an object';
  if (typeof p.IP !== 'string' || p.IP === '') return 'IP: missing';
  if (typeof p.ID !== 'number' || !Number.isInteger(p.ID) || p.ID < 0) return 'ID: not a non-negative integer';
  if (p.Mask !== undefined && p.Mask !== null && (typeof p.Mask !== 'number' || !Number.isInteger(p.Mask))) return 'Mask: not a prefix length';
  const len = typeof p.Mask === 'number' ? p.Mask : p.IP.includes(':') ? 128 : 32;
  return {
    prefix: `${p.IP}/${len}`,
    identity: p.ID,
    ...(p.HostIP ? { tunnelEndpoint: p.HostIP } : {}),
    ...(p.NodeName ? { node: p.NodeName } : {}),
    ...(typeof p.K8sNamespace === 'string' && p.K8sNamespace ? { namespace: p.K8sNamespace } : {}),
    ...(typeof p.K8sPodName === 'string' && p.K8sPodName ? { podName: p.K8sPodName } : {}),
    source: 'kvstore',
  };
}
