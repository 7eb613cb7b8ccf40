import { existsSync, mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBpffs, isBpffs, libbpfVersion, probeFeatures } from './features.js';

describe('ensureBpffs', () => {
  it('creates the pin root on bpffs (mounting /sys/fs/bpf if needed)', () => {
    const root = `/sys/fs/bpf/cilia-ensure-${process.pid}/nested`;
    try {
      const r = ensureBpffs(root);
      expect(r.pinRoot).toBe(root);
      expect(existsSync(root)).toBe(true);
      expect(isBpffs(root)).toBe(true);
      expect(isBpffs('/sys/fs/bpf')).toBe(true);
      expect(ensureBpffs(root).mounted).toBe(false); // idempotent
    } finally {
      rmSync(`/sys/fs/bpf/cilia-ensure-${process.pid}`, { recursive: true, force: true });
    }
  });

  it('refuses a pin root that is not on bpffs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-pins-'));
    try {
      expect(() => ensureBpffs(join(dir, 'pins'))).toThrow(/pin root .*\/pins is not on a bpffs mount/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('probeFeatures', () => {
  it('reports the kernel, bpffs, BTF, JIT and named features', () => {
    const pinRoot = `/sys/fs/bpf/cilia-probe-${process.pid}`;
    ensureBpffs(pinRoot);
    try {
      const f = probeFeatures(pinRoot);
      expect(f.kernel).toBe(release());
      expect(f.bpffs).toEqual({ mounted: true, path: pinRoot });
      expect(f.btf).toBe(existsSync('/sys/kernel/btf/vmlinux'));
      expect(typeof f.jit).toBe('boolean');
      // This kernel (6.x) has all of these; the probe must find them by loading, not assume.
      for (const name of ['ringbuf', 'lpm_trie', 'lru_hash', 'percpu_hash', 'percpu_array', 'prog:sched_cls', 'prog:xdp', 'prog:cgroup_sock_addr', 'bpf_sk_assign', 'bpf_redirect_peer']) {
        expect(f.supported).toContain(name);
      }
      expect(f.missing.filter((m) => f.supported.includes(m))).toEqual([]);
      expect(f.supported.length + f.missing.length).toBeGreaterThan(20);
    } finally {
      rmdirSync(pinRoot);
    }
    expect(probeFeatures('/sys/fs/bpf/cilia-not-there').bpffs.mounted).toBe(false);
  });

  it('reports the libbpf version', () => {
    expect(libbpfVersion()).toMatch(/^v1\.\d+/);
  });
});
