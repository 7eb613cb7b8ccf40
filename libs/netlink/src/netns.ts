import { readdir } from 'node:fs/promises';
import { toNetlinkError } from './errors.js';
import { NetlinkHandle } from './handle.js';
import { native } from './native.js';
import { NETNS_DIR, resolveNetnsPath, validateNetnsName } from './paths.js';

/** Path of the named namespace: /run/netns/NAME, where `ip netns` keeps them too. */
export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${validateNetnsName(name)}`;
}

/**
 * Creates a named network namespace (visible to `ip netns list`) and resolves with its path.
 * Rejects with EEXIST when the name is taken. Its loopback starts down, as with `ip netns add`.
 */
export async function createNetns(name: string): Promise<string> {
  validateNetnsName(name);
  try {
    return await native().createNetns(NETNS_DIR, name);
  } catch (err) {
    throw toNetlinkError(err, 'netns add', name);
  }
}

/**
 * Removes a named namespace. The namespace itself lives on while processes or sockets still
 * use it (close handles first); its links go with it once the last user is gone.
 */
export async function deleteNetns(name: string): Promise<void> {
  const path = netnsPath(name);
  try {
    await native().deleteNetns(path);
  } catch (err) {
    throw toNetlinkError(err, 'netns delete', name);
  }
}

/**
 * The kernel's cookie of a network namespace — the caller's, or `nameOrPath`'s (a name under
 * /run/netns, or a path like /proc/PID/ns/net) — as BPF programs see it (`bpf_get_netns_cookie`),
 * e.g. to tell the host's own sockets from pods'.
 */
export async function netnsCookie(nameOrPath?: string): Promise<number> {
  try {
    return await native().netnsCookie(nameOrPath === undefined ? null : resolveNetnsPath(nameOrPath));
  } catch (err) {
    throw toNetlinkError(err, 'netns cookie', nameOrPath ?? 'self');
  }
}

/** Names of the namespaces under /run/netns, sorted. */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** A netlink handle acting inside the namespace `nameOrPath` (a name under /run/netns, or a path like /proc/PID/ns/net). */
export function openNetns(nameOrPath: string): Promise<NetlinkHandle> {
  return NetlinkHandle.open(resolveNetnsPath(nameOrPath));
}

/** A netlink handle acting in this process's own namespace. */
export function openNetlink(): Promise<NetlinkHandle> {
  return NetlinkHandle.open(undefined);
}
