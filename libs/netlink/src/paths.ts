import { open } from 'node:fs/promises';
import { NetlinkError, NetlinkInputError } from './errors.js';

/** Where named namespaces live, as for `ip netns`. */
export const NETNS_DIR = '/run/netns';

/** Checks a namespace name: one path component, as `ip netns` accepts. */
export function validateNetnsName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) throw new NetlinkInputError(field, 'expected a non-empty namespace name');
  if (name.length > 255 || name.includes('/') || name === '.' || name === '..' || name.includes('\0')) {
    throw new NetlinkInputError(field, `"${name}" is not a valid namespace name (one path component, no "/")`);
  }
  return name;
}

/** A namespace name becomes /run/netns/NAME; anything with a "/" is taken as a path (e.g. /proc/PID/ns/net). */
export function resolveNetnsPath(nameOrPath: unknown, field = 'netns'): string {
  if (typeof nameOrPath === 'string' && nameOrPath.includes('/')) return nameOrPath;
  return `${NETNS_DIR}/${validateNetnsName(nameOrPath, field)}`;
}

/** Runs `fn` with an open descriptor of the namespace at `path` (IFLA_NET_NS_FD wants one). */
export async function withNetnsFd<T>(path: string, operation: string, fn: (fd: number) => Promise<T>): Promise<T> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NetlinkError(operation, path, e.errno ? -e.errno : 0, e.code ?? 'EIO', 'cannot open network namespace', undefined, err);
  }
  try {
    return await fn(handle.fd);
  } finally {
    await handle.close();
  }
}
