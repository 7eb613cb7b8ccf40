// tools/bpf-build.mjs, as Nx runs it for every package with BPF sources.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { workspaceRoot } from './testing/index.js';

const script = join(workspaceRoot(), 'tools', 'bpf-build.mjs');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function pkg(sources: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-bpf-build-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'bpf'));
  for (const [name, text] of Object.entries(sources)) writeFileSync(join(dir, 'bpf', name), text);
  return dir;
}

const build = (args: string[], cwd = tmpdir()) =>
  spawnSync(process.execPath, [script, ...args], { cwd, encoding: 'utf8' });

const GOOD = `#include "cilia/common.h"
#include "lib/events.h"
SEC("tc") int ok(struct __sk_buff *skb) { return TC_ACT_OK; }
char LICENSE[] SEC("license") = "GPL";
`;

describe('tools/bpf-build.mjs', () => {
  it('compiles <pkg>/bpf/*.c against bpf/include ("cilia/…") and bpf ("lib/…") into <pkg>/dist/bpf, from any cwd', () => {
    const dir = pkg({ 'a.c': GOOD, 'b.c': GOOD.replace('int ok', 'int ok2') });
    const r = build([dir], '/');
    expect(r.status, r.stderr).toBe(0);
    for (const name of ['a', 'b']) {
      const elf = readFileSync(join(dir, 'dist', 'bpf', `${name}.o`));
      expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(elf.readUInt16LE(18)).toBe(247); // e_machine EM_BPF
    }
  });

  it('writes to --out and builds only what --only names', () => {
    const dir = pkg({ 'a.c': GOOD, 'b.c': GOOD });
    const out = join(dir, 'elsewhere');
    expect(build([dir, '--out', out, '--only', 'b']).status).toBe(0);
    expect(existsSync(join(out, 'b.o'))).toBe(true);
    expect(existsSync(join(out, 'a.o'))).toBe(false);
    const r = build([dir, '--only', 'nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--only: no nope\.c in/);
  });

  it("fails with clang's message on a compile error", () => {
    const dir = pkg({ 'broken.c': '#include "cilia/common.h"\nSEC("tc") int f(struct __sk_buff *skb) { return undeclared_thing; }\n' });
    const r = build([dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/broken\.c failed/);
    expect(r.stderr).toMatch(/broken\.c:2:\d+: error: use of undeclared identifier 'undeclared_thing'/);
    expect(existsSync(join(dir, 'dist', 'bpf', 'broken.o'))).toBe(false);
  });

  it('does nothing for a package without BPF sources, and rejects bad usage', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-bpf-build-'));
    dirs.push(dir);
    const r = build([dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/no BPF sources/);
    expect(build([]).status).toBe(2);
    expect(build([join(dir, 'missing')]).stderr).toMatch(/package directory .*missing does not exist/);
    expect(build([dir, '--bogus']).stderr).toMatch(/unknown option --bogus/);
  });
});
