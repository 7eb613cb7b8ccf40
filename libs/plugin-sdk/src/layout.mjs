// The layout of the Cilia ABI as BTF describes it: every `cilia_*` struct, union and enum,
// with its size, its members' offsets and sizes, its enumerators' values. The SDK's build
// writes the reference (dist/layout.json) from an anchor object that keeps every such type of
// its headers; the build step compares each object it compiles with it.

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { BTF_KIND, btfSizeOf, parseBtf, parseElf } from './elf.mjs';

/**
 * @typedef {{ name: string, offset: number, size: number } | { name: string, bitOffset: number, bits: number }} MemberLayout
 * @typedef {{ size: number, members: MemberLayout[] }} RecordLayout
 * @typedef {{ size: number, values: Record<string, number | string> }} EnumLayout
 * @typedef {Record<string, RecordLayout | EnumLayout>} AbiLayout  keyed "struct cilia_ctx", "enum cilia_slot", …
 */

const PREFIX = 'cilia_';

/**
 * The `cilia_*` types of a BTF type table.
 * @param {import('./elf.mjs').BtfType[]} types
 * @returns {AbiLayout}
 */
export function abiLayout(types) {
  /** @type {AbiLayout} */
  const layout = {};
  for (const t of types) {
    if (!t || !t.name.startsWith(PREFIX)) continue;
    if (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) {
      layout[`${t.kind === BTF_KIND.STRUCT ? 'struct' : 'union'} ${t.name}`] = { size: t.size, members: members(types, t, 0) };
    } else if (t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) {
      /** @type {Record<string, number | string>} */
      const values = {};
      // 64-bit values beyond 2^53 as strings, so the layout stays JSON.
      for (const v of t.values ?? []) values[v.name] = typeof v.value === 'bigint' ? v.value.toString() : v.value;
      layout[`enum ${t.name}`] = { size: t.size, values };
    }
  }
  return layout;
}

/**
 * Members with absolute offsets; an anonymous struct or union member's fields are the parent's.
 * @param {import('./elf.mjs').BtfType[]} types
 * @param {import('./elf.mjs').BtfType} record
 * @param {number} base bit offset of the record
 * @returns {MemberLayout[]}
 */
function members(types, record, base) {
  /** @type {MemberLayout[]} */
  const out = [];
  for (const m of record.members ?? []) {
    const bitOffset = base + m.bitOffset;
    if (m.name === '') {
      let inner = types[m.type];
      while (inner && (inner.kind === BTF_KIND.TYPEDEF || inner.kind === BTF_KIND.CONST || inner.kind === BTF_KIND.VOLATILE)) inner = types[inner.type];
      if (inner && (inner.kind === BTF_KIND.STRUCT || inner.kind === BTF_KIND.UNION)) {
        out.push(...members(types, inner, bitOffset));
        continue;
      }
    }
    if (m.bitSize !== 0 || bitOffset % 8 !== 0) out.push({ name: m.name, bitOffset, bits: m.bitSize });
    else out.push({ name: m.name, offset: bitOffset / 8, size: btfSizeOf(types, m.type) });
  }
  return out;
}

/**
 * The `cilia_*` types a compiled object carries in its BTF.
 * @param {string | URL | Buffer} object the object's path, or its bytes
 * @param {string} [what] names it in errors (default: the path)
 * @returns {AbiLayout}
 */
export function objectLayout(object, what) {
  const name = what ?? (Buffer.isBuffer(object) ? 'object' : object instanceof URL ? fileURLToPath(object) : object);
  const data = Buffer.isBuffer(object) ? object : readFileSync(object);
  return abiLayout(parseBtf(parseElf(data, name), name));
}

const where = (/** @type {MemberLayout} */ m) => ('offset' in m ? `offset ${m.offset}, size ${m.size}` : `bit ${m.bitOffset}, ${m.bits} bits`);

/**
 * What differs between an object's `cilia_*` types and the reference, one line per field:
 * `struct cilia_ctx.slot: offset 11, size 1 (the SDK's: offset 10, size 1)`. Empty when
 * every type the object carries matches. The `cilia_` prefix belongs to the ABI: a type of
 * that name the reference does not know is a mismatch too.
 * @param {AbiLayout} actual
 * @param {AbiLayout} reference
 * @returns {string[]}
 */
export function compareLayout(actual, reference) {
  const problems = [];
  for (const [key, a] of Object.entries(actual)) {
    const r = reference[key];
    if (!r) {
      problems.push(`${key}: not a type of the SDK's ABI (the cilia_ prefix is reserved for it; rename your own types)`);
      continue;
    }
    if (a.size !== r.size) problems.push(`${key}: size ${a.size} (the SDK's: ${r.size})`);
    if ('members' in a && 'members' in r) {
      const mine = new Map(a.members.map((m) => [m.name, m]));
      const theirs = new Map(r.members.map((m) => [m.name, m]));
      for (const [name, rm] of theirs) {
        const am = mine.get(name);
        if (!am) problems.push(`${key}.${name}: missing (the SDK's: ${where(rm)})`);
        else if (where(am) !== where(rm)) problems.push(`${key}.${name}: ${where(am)} (the SDK's: ${where(rm)})`);
      }
      for (const [name, am] of mine) if (!theirs.has(name)) problems.push(`${key}.${name}: not in the SDK's ${key} (${where(am)})`);
    } else if ('values' in a && 'values' in r) {
      for (const [name, value] of Object.entries(r.values)) {
        if (!(name in a.values)) problems.push(`${key}.${name}: missing (the SDK's: ${value})`);
        else if (a.values[name] !== value) problems.push(`${key}.${name}: ${a.values[name]} (the SDK's: ${value})`);
      }
      for (const [name, value] of Object.entries(a.values)) if (!(name in r.values)) problems.push(`${key}.${name}: not in the SDK's ${key} (${value})`);
    }
  }
  return problems;
}

const DEFINITION = /^\s*(struct|union|enum)\s+(cilia_\w+)\s*\{/gm;

/**
 * A C source that includes every header under `<headerRoot>/include/cilia` and
 * `<headerRoot>/lib` and keeps each `cilia_*` type they define in BTF; compiled, its layout is
 * the reference. Returns the source and the keys ("struct cilia_ctx", …) it must yield.
 * @param {string} headerRoot
 * @returns {{ source: string, expected: string[] }}
 */
export function anchorSource(headerRoot) {
  const headers = [
    ...listHeaders(join(headerRoot, 'include', 'cilia')).map((f) => ({ dir: 'include/cilia', as: 'cilia', file: f })),
    ...listHeaders(join(headerRoot, 'lib')).map((f) => ({ dir: 'lib', as: 'lib', file: f })),
  ];
  const expected = new Set();
  const lines = ['/* Generated by @cilia/plugin-sdk: keeps every cilia_* type of its headers in BTF. */'];
  const anchors = [];
  for (const { dir, as, file } of headers) {
    lines.push(`#include "${as}/${file}"`);
    const text = readFileSync(join(headerRoot, dir, file), 'utf8');
    for (const [, kind, tag] of text.matchAll(DEFINITION)) {
      const key = `${kind} ${tag}`;
      if (expected.has(key)) continue;
      expected.add(key);
      anchors.push(`const ${key} *__cilia_sdk_${kind}_${tag} __attribute__((unused, section(".bss")));`);
    }
  }
  lines.push(...anchors, 'char LICENSE[] SEC("license") = "GPL";', '');
  return { source: lines.join('\n'), expected: [...expected].sort() };
}

/** @param {string} dir */
function listHeaders(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.h'))
    .sort();
}
