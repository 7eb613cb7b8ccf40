// Startup checks for the agent: a bpffs to pin on, and what this kernel's BPF can do.
import { existsSync, mkdirSync, readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import type { BpfFeatures } from '@cilia/core';
import { BpfError, wrap } from './errors.js';
import { DEFAULT_PIN_ROOT } from './object.js';
import { native } from './native.js';

const BPFFS_MAGIC = 0xcafe4a11;
const BPFFS_MOUNT = '/sys/fs/bpf';

/** True when `path` is on a bpffs mount. */
export function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPFFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes `pinRoot` usable for pins: mounts bpffs at /sys/fs/bpf when it is not mounted there
 * yet, then creates `pinRoot` (and its parents) on it. Needs root (CAP_SYS_ADMIN).
 *
 * @param pinRoot directory to pin under, default `/sys/fs/bpf/cilia`
 * @returns whether bpffs had to be mounted by this call
 * @throws BpfError when mounting fails or `pinRoot` is not on bpffs afterwards
 */
export function ensureBpffs(pinRoot: string = DEFAULT_PIN_ROOT): { mounted: boolean; pinRoot: string } {
  let mounted = false;
  if (pinRoot.startsWith(`${BPFFS_MOUNT}/`) || pinRoot === BPFFS_MOUNT) {
    if (!isBpffs(BPFFS_MOUNT)) {
      mkdirSync(BPFFS_MOUNT, { recursive: true });
      wrap(() => native().mountBpffs(BPFFS_MOUNT));
      mounted = true;
    }
  }
  mkdirSync(pinRoot, { recursive: true, mode: 0o700 });
  if (!isBpffs(pinRoot)) {
    throw new BpfError(`pin root ${pinRoot} is not on a bpffs mount`, 22, 'EINVAL');
  }
  return { mounted, pinRoot };
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Probes the running kernel. `supported`/`missing` name map types (`ringbuf`, `lpm_trie`,
 * `lru_hash`, `percpu_hash`, ...), program types (`prog:sched_cls`, `prog:xdp`,
 * `prog:cgroup_sock_addr`, ...) and helpers (`bpf_sk_assign`, `bpf_redirect_peer`, ...).
 * Cheap enough for startup (a few dozen tiny loads).
 *
 * @param pinRoot the pin root to report on, default `/sys/fs/bpf/cilia`
 */
export function probeFeatures(pinRoot: string = DEFAULT_PIN_ROOT): BpfFeatures {
  const probed = native().probeFeatures();
  const supported: string[] = [];
  const missing: string[] = [];
  const sort = (name: string, ok: boolean): void => void (ok ? supported : missing).push(name);
  for (const [name, ok] of Object.entries(probed.mapTypes)) sort(name, ok);
  for (const [name, ok] of Object.entries(probed.progTypes)) sort(`prog:${name}`, ok);
  for (const [name, ok] of Object.entries(probed.helpers)) sort(name, ok);
  const jit = readTrimmed('/proc/sys/net/core/bpf_jit_enable');
  return {
    kernel: release(),
    bpffs: { mounted: existsSync(pinRoot) && isBpffs(pinRoot), path: pinRoot },
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    // Kernels built with CONFIG_BPF_JIT_ALWAYS_ON report 1 and cannot turn it off.
    jit: jit === '1' || jit === '2',
    supported,
    missing,
  };
}

/** libbpf's version string, e.g. `v1.1`. */
export function libbpfVersion(): string {
  return native().libbpfVersion();
}
