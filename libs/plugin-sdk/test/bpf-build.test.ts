// cilia-bpf-build, run as a plugin runs it: from a copy of the SDK built in a temporary
// directory (so the test neither needs nor touches the workspace's dist/).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareLayout, inspectBpfObject, objectLayout } from '../src/index.mjs';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const REPO_BPF = join(PACKAGE, '..', '..', 'bpf');
const { version } = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as { version: string };

let tmp = '';
let sdk = '';
let bin = '';

/** A copy of the SDK's sources, unbuilt. */
function copySdk(dest: string): string {
  for (const part of ['bin', 'src', 'scripts', 'package.json', 'README.md']) cpSync(join(PACKAGE, part), join(dest, part), { recursive: true });
  return dest;
}

let counter = 0;
/** A plugin package with the given files (paths relative to it). */
function plugin(files: Record<string, string>): string {
  const dir = join(tmp, `plugin-${counter++}`);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const build = (args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; bin?: string } = {}) =>
  spawnSync(process.execPath, [options.bin ?? bin, ...args], { cwd: options.cwd ?? tmp, env: options.env ?? process.env, encoding: 'utf8' });

// A slot program as a plugin writes one: the context from the SDK's headers, a map and a
// load-time constant of its own.
const GOOD = `#include "cilia/common.h"
#include "cilia/ctx.h"
#include "lib/slots.h"

CILIA_CONST(__u32, cfg_limit, 0);

struct good_count { __u64 packets; };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct good_count);
} good_counts SEC(".maps");

SEC("tc")
int good_shaping(struct __sk_buff *skb)
{
	struct cilia_ctx ctx;
	__u32 zero = 0;
	struct good_count *n = bpf_map_lookup_elem(&good_counts, &zero);

	cilia_ctx_load(skb, &ctx);
	if (n)
		n->packets++;
	if (cfg_limit && skb->len > cfg_limit)
		return TC_ACT_SHOT;
	cilia_slot_next(skb, &ctx);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
`;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cilia-plugin-sdk-test-'));
  sdk = copySdk(join(tmp, 'sdk'));
  execFileSync(process.execPath, [join(sdk, 'scripts', 'build.mjs'), '--bpf', REPO_BPF], { stdio: 'pipe' });
  bin = join(sdk, 'bin', 'cilia-bpf-build.mjs');
}, 60_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the SDK build', () => {
  it("copies the repository's headers, every one, and writes the layout of every cilia_* type they define", () => {
    const list = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.h')).sort();
    expect(list(join(sdk, 'dist/bpf/include/cilia'))).toEqual(list(join(REPO_BPF, 'include/cilia')));
    expect(list(join(sdk, 'dist/bpf/lib'))).toEqual(list(join(REPO_BPF, 'lib')));
    for (const f of list(join(REPO_BPF, 'include/cilia'))) {
      expect(readFileSync(join(sdk, 'dist/bpf/include/cilia', f), 'utf8'), f).toBe(readFileSync(join(REPO_BPF, 'include/cilia', f), 'utf8'));
    }
    const layout = JSON.parse(readFileSync(join(sdk, 'dist/layout.json'), 'utf8'));
    expect(layout.sdk).toBe(`@cilia/plugin-sdk ${version}`);
    expect(layout.types['struct cilia_ctx']).toMatchObject({ size: 20, members: expect.arrayContaining([{ name: 'src_identity', offset: 0, size: 4 }]) });
    expect(layout.types['enum cilia_slot'].values).toMatchObject({ CILIA_SLOT_SERVICE: 0, CILIA_SLOT_FORWARD: 4 });
    // Every struct, union and enum named cilia_* in the headers is there.
    const defined = [join(REPO_BPF, 'include/cilia'), join(REPO_BPF, 'lib')].flatMap((dir) =>
      list(dir).flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/^\s*(struct|union|enum)\s+(cilia_\w+)\s*\{/gm)].map((m) => `${m[1]} ${m[2]}`)),
    );
    expect(Object.keys(layout.types).sort()).toEqual([...new Set(defined)].sort());
  });

  it('ships the bin, the code, the headers and the layout, and nothing else', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: sdk, encoding: 'utf8' });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'bin/cilia-bpf-build.mjs',
        'src/index.mjs',
        'src/index.d.mts',
        'src/build.mjs',
        'dist/layout.json',
        'dist/bpf/include/cilia/ctx.h',
        'dist/bpf/include/cilia/slots.h',
        'dist/bpf/lib/slots.h',
        'dist/bpf/lib/parse.h',
      ]),
    );
    expect(files.filter((f) => f.startsWith('scripts/') || f.startsWith('test/') || f.endsWith('.test.ts'))).toEqual([]);
  });

  it("reads BTF as bpftool does", () => {
    const dir = plugin({ 'bpf/good.c': GOOD });
    expect(build([dir]).status).toBe(0);
    const object = join(dir, 'dist/bpf/good.o');
    const mine = objectLayout(object);
    const dumped = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8' })) as {
      types: { kind: string; name: string; size?: number; members?: { name: string; bits_offset: number }[]; values?: { name: string; val: number }[] }[];
    };
    const theirs = dumped.types.filter((t) => t.name.startsWith('cilia_') && ['STRUCT', 'UNION', 'ENUM'].includes(t.kind));
    expect(theirs.length).toBeGreaterThan(0);
    for (const t of theirs) {
      const key = `${t.kind === 'ENUM' ? 'enum' : t.kind.toLowerCase()} ${t.name}`;
      const m = mine[key]!;
      expect(m.size, key).toBe(t.size);
      if ('members' in m) expect(m.members.map((x) => ['offset' in x ? x.offset * 8 : x.bitOffset, x.name])).toEqual(t.members!.map((x) => [x.bits_offset, x.name]));
      else expect(m.values).toEqual(Object.fromEntries(t.values!.map((v) => [v.name, v.val])));
    }
  });
});

describe('cilia-bpf-build', () => {
  it('builds <packageDir>/bpf/*.c into dist/bpf for the BPF target and checks its ABI types', () => {
    const dir = plugin({ 'bpf/good.c': GOOD });
    const r = build([dir], { cwd: '/' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`1/1 object(s)`);
    expect(r.stdout).toContain(`ABI layout checked against @cilia/plugin-sdk ${version}`);
    const info = inspectBpfObject(join(dir, 'dist/bpf/good.o'));
    expect(info).toMatchObject({ machine: 247, isBpf: true, programs: [{ name: 'good_shaping', section: 'tc' }], constants: ['cfg_limit'], license: 'GPL' });
    expect(info.maps).toEqual(expect.arrayContaining(['cilia_tc_slots', 'good_counts']));
    // The object carries the ABI types of the headers it used, and they match.
    expect(Object.keys(objectLayout(join(dir, 'dist/bpf/good.o')))).toEqual(expect.arrayContaining(['struct cilia_ctx', 'enum cilia_slot']));
  });

  it('defaults to the current directory, honours --src, --out and --only', () => {
    const dir = plugin({ 'bpf/a.c': GOOD, 'bpf/b.c': GOOD.replace('good_shaping', 'other'), 'c/c.c': GOOD });
    expect(build([], { cwd: dir }).status).toBe(0);
    expect(readdirSync(join(dir, 'dist/bpf')).sort()).toEqual(['a.o', 'b.o']);
    expect(build(['--src', 'c', '--out', 'elsewhere', '--only', 'c'], { cwd: dir }).status).toBe(0);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['c.o']);
    const r = build([dir, '--only', 'nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^cilia-bpf-build: --only: no nope\.c in/);
    expect(build([dir, '--bogus']).stderr).toMatch(/unknown option --bogus/);
    expect(build(['--help']).stdout).toMatch(/^usage: cilia-bpf-build \[packageDir\] \[--src <dir>\] \[--out <dir>\] \[--only <name,…>\]/);
  });

  it('fails naming the struct and field when an object was compiled against a changed copy of a header', () => {
    // A vendored, edited ctx.h: quoted includes find it beside the source before the SDK's.
    const ctx = readFileSync(join(REPO_BPF, 'include/cilia/ctx.h'), 'utf8');
    const swapped = ctx.replace(/(\t__u8 slot;[^\n]*\n)(\t__u8 ct_status;[^\n]*\n)/, '$2$1');
    expect(swapped).not.toBe(ctx);
    const slots = readFileSync(join(REPO_BPF, 'include/cilia/slots.h'), 'utf8');
    const renumbered = slots.replace('CILIA_SLOT_SHAPING = 3', 'CILIA_SLOT_SHAPING = 5');
    expect(renumbered).not.toBe(slots);
    const dir = plugin({
      'bpf/stale.c': `#include "cilia/ctx.h"\n#include "cilia/slots.h"\n${GOOD}`,
      'bpf/cilia/ctx.h': swapped,
      'bpf/cilia/slots.h': renumbered,
    });
    const r = build([dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('stale.c failed');
    expect(r.stderr).toContain(`its BTF does not match @cilia/plugin-sdk ${version}'s layout of the Cilia ABI`);
    expect(r.stderr).toContain('struct cilia_ctx.slot: offset 11, size 1 (the SDK\'s: offset 10, size 1)');
    expect(r.stderr).toContain('struct cilia_ctx.ct_status: offset 10, size 1 (the SDK\'s: offset 11, size 1)');
    expect(r.stderr).toContain("enum cilia_slot.CILIA_SLOT_SHAPING: 5 (the SDK's: 3)");
    expect(existsSync(join(dir, 'dist/bpf/stale.o')), 'no object is left behind').toBe(false);
    expect(readdirSync(join(dir, 'dist/bpf'))).toEqual([]);
  });

  it('refuses a cilia_* type the ABI does not have, and a grown struct', () => {
    const dir = plugin({
      'bpf/own.c': `#include "cilia/common.h"
struct cilia_mine { __u32 a; };
CILIA_BTF_ANCHOR(cilia_mine);
char LICENSE[] SEC("license") = "GPL";
`,
    });
    const r = build([dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("struct cilia_mine: not a type of the SDK's ABI (the cilia_ prefix is reserved for it; rename your own types)");

    const grown = compareLayout(
      { 'struct cilia_ctx': { size: 24, members: [{ name: 'src_identity', offset: 0, size: 4 }, { name: 'extra', offset: 20, size: 4 }] } },
      { 'struct cilia_ctx': { size: 20, members: [{ name: 'src_identity', offset: 0, size: 4 }, { name: 'dst_identity', offset: 4, size: 4 }] } },
    );
    expect(grown).toEqual([
      "struct cilia_ctx: size 24 (the SDK's: 20)",
      "struct cilia_ctx.dst_identity: missing (the SDK's: offset 4, size 4)",
      "struct cilia_ctx.extra: not in the SDK's struct cilia_ctx (offset 20, size 4)",
    ]);
  });

  it("fails with clang's message on a compile error, with a hint for missing libbpf headers", () => {
    const dir = plugin({ 'bpf/broken.c': '#include "cilia/common.h"\nSEC("tc") int f(struct __sk_buff *skb) { return undeclared_thing; }\n' });
    const r = build([dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/broken\.c failed/);
    expect(r.stderr).toMatch(/broken\.c:2:\d+: error: use of undeclared identifier 'undeclared_thing'/);
    const hinted = plugin({ 'bpf/x.c': '#include "cilia/common.h"\n' });
    // An include path without libbpf's headers: clang's message, then the hint.
    const fakeClang = join(tmp, 'clang-no-libbpf.sh');
    writeFileSync(fakeClang, `#!/bin/sh\necho "x.c:1:10: fatal error: 'bpf/bpf_helpers.h' file not found" >&2\nexit 1\n`, { mode: 0o755 });
    const h = build([hinted], { env: { ...process.env, CLANG: fakeClang } });
    expect(h.status).toBe(1);
    expect(h.stderr).toContain("hint: libbpf's headers are missing: install libbpf-dev");
  });

  it('says clang is missing, and how to install it', () => {
    const dir = plugin({ 'bpf/good.c': GOOD });
    const r = build([dir], { env: { ...process.env, PATH: join(tmp, 'empty-path') } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('clang not found (looked for `clang` on PATH; set CLANG to use another): install clang to build BPF objects (Debian/Ubuntu: apt-get install clang llvm libbpf-dev)');
    const named = build([dir], { env: { ...process.env, CLANG: '/nonexistent/clang-99' } });
    expect(named.status).toBe(1);
    expect(named.stderr).toContain('clang not found (CLANG=/nonexistent/clang-99)');
    expect(existsSync(join(dir, 'dist/bpf/good.o'))).toBe(false);
  });

  it('says when its own copy was never built', () => {
    const unbuilt = copySdk(join(tmp, 'sdk-unbuilt'));
    const r = build([plugin({ 'bpf/good.c': GOOD })], { bin: join(unbuilt, 'bin', 'cilia-bpf-build.mjs') });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^cilia-bpf-build: @cilia\/plugin-sdk \S+ has no headers or reference layout in .*: this copy was not built/);
  });

  it('does nothing for a package without BPF sources, and rejects bad usage', () => {
    const dir = plugin({ 'package.json': '{}' });
    const r = build([dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/no BPF sources/);
    expect(build([join(dir, 'missing')]).stderr).toMatch(/package directory .*missing does not exist/);
    expect(build([dir, 'extra']).stderr).toMatch(/unexpected argument extra/);
  });
});
