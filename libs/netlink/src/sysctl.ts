import { NetlinkInputError, toNetlinkError } from './errors.js';
import { native } from './native.js';
import { resolveNetnsPath } from './paths.js';

const PROC_SYS = '/proc/sys/';

/**
 * The /proc/sys file of a sysctl key. Dotted keys as sysctl(8) writes them
 * ("net.ipv4.conf.eth0.rp_filter", with "/" standing for a "." inside a component, e.g.
 * "net.ipv4.conf.eth0/100.rp_filter"), or an absolute path under /proc/sys/.
 */
export function sysctlPath(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new NetlinkInputError('key', 'expected a sysctl key such as "net.ipv4.ip_forward"');
  const components = key.startsWith(PROC_SYS) ? key.slice(PROC_SYS.length).split('/') : key.split('.').map((c) => c.replaceAll('/', '.'));
  for (const c of components) {
    if (c === '' || c === '.' || c === '..' || c.includes('\0')) {
      throw new NetlinkInputError('key', `"${key}" is not a sysctl key (empty, "." or ".." component)`);
    }
  }
  return PROC_SYS + components.join('/');
}

/** Options shared by the sysctl functions. */
export interface SysctlOptions {
  /** Namespace (name or path) whose value to use; the caller's own by default. */
  netns?: string;
}

/** Writes a sysctl, e.g. `setSysctl('net.ipv4.conf.all.forwarding', 1, { netns: 'pod1' })`. */
export async function setSysctl(key: string, value: string | number, options: SysctlOptions = {}): Promise<void> {
  const path = sysctlPath(key);
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new NetlinkInputError('value', `expected a string or number for ${key}, got ${typeof value}`);
  }
  const netns = options.netns === undefined ? null : resolveNetnsPath(options.netns);
  try {
    await native().writeSysctl(path, String(value), netns);
  } catch (err) {
    throw toNetlinkError(err, `sysctl set ${key}=${value}`, netns ? `in ${netns}` : '');
  }
}

/** Reads a sysctl's value, trimmed of its trailing newline. */
export async function getSysctl(key: string, options: SysctlOptions = {}): Promise<string> {
  const path = sysctlPath(key);
  const netns = options.netns === undefined ? null : resolveNetnsPath(options.netns);
  try {
    return (await native().readSysctl(path, netns)).trimEnd();
  } catch (err) {
    throw toNetlinkError(err, `sysctl get ${key}`, netns ? `in ${netns}` : '');
  }
}
