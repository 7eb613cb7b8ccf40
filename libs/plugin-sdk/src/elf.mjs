// Reads what the SDK needs from a BPF ELF object: its sections and symbols, and the BTF that
// `clang -g` emits. Standard library only: the build step that uses it runs before anything
// is installed, and a plugin author needs no bpftool for it.

import { readFileSync } from 'node:fs';

const EM_BPF = 247;
const SHT_SYMTAB = 2;
const SHF_EXECINSTR = 0x4;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STB_GLOBAL = 1;

/**
 * @typedef {{ name: string, type: number, flags: bigint, offset: number, size: number, link: number }} ElfSection
 * @typedef {{ name: string, type: number, bind: number, section: number, value: bigint, size: bigint }} ElfSymbol
 * @typedef {{ machine: number, littleEndian: boolean, sections: ElfSection[], symbols: ElfSymbol[], data: Buffer }} ElfFile
 */

/**
 * Parses a 64-bit ELF relocatable object (what clang -target bpf writes).
 * @param {Buffer} data
 * @param {string} [what] names the file in errors
 * @returns {ElfFile}
 */
export function parseElf(data, what = 'object') {
  if (data.length < 64 || data.toString('latin1', 0, 4) !== '\x7fELF') throw new Error(`${what} is not an ELF file`);
  if (data[4] !== 2) throw new Error(`${what} is not a 64-bit ELF file`);
  const littleEndian = data[5] === 1;
  const u16 = (/** @type {number} */ o) => (littleEndian ? data.readUInt16LE(o) : data.readUInt16BE(o));
  const u32 = (/** @type {number} */ o) => (littleEndian ? data.readUInt32LE(o) : data.readUInt32BE(o));
  const u64 = (/** @type {number} */ o) => (littleEndian ? data.readBigUInt64LE(o) : data.readBigUInt64BE(o));
  const machine = u16(18);
  const shoff = Number(u64(0x28));
  const shentsize = u16(0x3a);
  const shnum = u16(0x3c);
  const shstrndx = u16(0x3e);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    raw.push({ nameOff: u32(o), type: u32(o + 4), flags: u64(o + 8), offset: Number(u64(o + 0x18)), size: Number(u64(o + 0x20)), link: u32(o + 0x28) });
  }
  const strings = (/** @type {{ offset: number }} */ section, /** @type {number} */ off) => {
    const start = section.offset + off;
    const end = data.indexOf(0, start);
    return data.toString('latin1', start, end < 0 ? start : end);
  };
  const shstr = raw[shstrndx];
  const sections = raw.map((s) => ({ name: shstr ? strings(shstr, s.nameOff) : '', type: s.type, flags: s.flags, offset: s.offset, size: s.size, link: s.link }));
  /** @type {ElfSymbol[]} */
  const symbols = [];
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab) {
    const strtab = sections[symtab.link];
    for (let o = symtab.offset; o + 24 <= symtab.offset + symtab.size; o += 24) {
      const info = data[o + 4] ?? 0;
      symbols.push({
        name: strtab ? strings(strtab, u32(o)) : '',
        type: info & 0xf,
        bind: info >> 4,
        section: u16(o + 6),
        value: u64(o + 8),
        size: u64(o + 16),
      });
    }
  }
  return { machine, littleEndian, sections, symbols, data };
}

// BTF kinds (include/uapi/linux/btf.h).
const KIND = Object.freeze({
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
});

/**
 * One BTF type. `members` for structs and unions (bit offsets), `values` for enums, `vars` for
 * data sections (type ids of their variables).
 * @typedef {{
 *   id: number, kind: number, name: string, size: number, type: number,
 *   signed?: boolean,
 *   members?: { name: string, type: number, bitOffset: number, bitSize: number }[],
 *   values?: { name: string, value: number | bigint }[],
 *   elem?: number, nelems?: number,
 *   vars?: number[],
 * }} BtfType
 */

/**
 * The BTF of an ELF object: `types[id]` (id 0 is void and left out).
 * @param {ElfFile} elf
 * @param {string} [what]
 * @returns {BtfType[]}
 */
export function parseBtf(elf, what = 'object') {
  const section = elf.sections.find((s) => s.name === '.BTF');
  if (!section) throw new Error(`${what} has no BTF (.BTF section): compile it with -g`);
  const { data, littleEndian } = elf;
  const base = section.offset;
  const u32 = (/** @type {number} */ o) => (littleEndian ? data.readUInt32LE(o) : data.readUInt32BE(o));
  const i32 = (/** @type {number} */ o) => (littleEndian ? data.readInt32LE(o) : data.readInt32BE(o));
  const magic = littleEndian ? data.readUInt16LE(base) : data.readUInt16BE(base);
  if (magic !== 0xeb9f) throw new Error(`${what}: .BTF has a bad magic number`);
  const hdrLen = u32(base + 4);
  const typeOff = base + hdrLen + u32(base + 8);
  const typeEnd = typeOff + u32(base + 12);
  const strOff = base + hdrLen + u32(base + 16);
  const str = (/** @type {number} */ off) => {
    const end = data.indexOf(0, strOff + off);
    return data.toString('latin1', strOff + off, end);
  };
  /** @type {BtfType[]} */
  const types = [];
  let id = 1;
  for (let o = typeOff; o < typeEnd; id++) {
    const info = u32(o + 4);
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    /** @type {BtfType} */
    const t = { id, kind, name: str(u32(o)), size: u32(o + 8), type: u32(o + 8) };
    o += 12;
    switch (kind) {
      case KIND.INT:
        t.signed = ((u32(o) >>> 24) & 1) === 1;
        o += 4;
        break;
      case KIND.ARRAY:
        t.elem = u32(o);
        t.nelems = u32(o + 8);
        o += 12;
        break;
      case KIND.STRUCT:
      case KIND.UNION:
        t.members = [];
        for (let i = 0; i < vlen; i++, o += 12) {
          const offset = u32(o + 8);
          t.members.push({
            name: str(u32(o)),
            type: u32(o + 4),
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitSize: kindFlag ? offset >>> 24 : 0,
          });
        }
        break;
      case KIND.ENUM:
        t.signed = kindFlag;
        t.values = [];
        for (let i = 0; i < vlen; i++, o += 8) t.values.push({ name: str(u32(o)), value: kindFlag ? i32(o + 4) : u32(o + 4) });
        break;
      case KIND.ENUM64:
        t.signed = kindFlag;
        t.values = [];
        for (let i = 0; i < vlen; i++, o += 12) {
          const raw = (BigInt(u32(o + 8)) << 32n) | BigInt(u32(o + 4));
          const value = kindFlag ? BigInt.asIntN(64, raw) : raw;
          t.values.push({ name: str(u32(o)), value: value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value });
        }
        break;
      case KIND.FUNC_PROTO:
        o += 8 * vlen;
        break;
      case KIND.VAR:
      case KIND.DECL_TAG:
        o += 4;
        break;
      case KIND.DATASEC:
        t.vars = [];
        for (let i = 0; i < vlen; i++, o += 12) t.vars.push(u32(o));
        break;
      case KIND.PTR:
      case KIND.FWD:
      case KIND.TYPEDEF:
      case KIND.VOLATILE:
      case KIND.CONST:
      case KIND.RESTRICT:
      case KIND.FUNC:
      case KIND.FLOAT:
      case KIND.TYPE_TAG:
        break;
      default:
        throw new Error(`${what}: BTF type ${id} has kind ${kind}, which this SDK does not know`);
    }
    types[id] = t;
  }
  return types;
}

/**
 * The size in bytes of a BTF type, following typedefs and qualifiers.
 * @param {BtfType[]} types
 * @param {number} id
 * @returns {number}
 */
export function btfSizeOf(types, id) {
  for (let depth = 0; depth < 64; depth++) {
    const t = types[id];
    if (!t) return 0;
    switch (t.kind) {
      case KIND.PTR:
        return 8;
      case KIND.ARRAY:
        return btfSizeOf(types, t.elem ?? 0) * (t.nelems ?? 0);
      case KIND.TYPEDEF:
      case KIND.VOLATILE:
      case KIND.CONST:
      case KIND.RESTRICT:
      case KIND.TYPE_TAG:
        id = t.type;
        break;
      default:
        return t.size;
    }
  }
  return 0;
}

export { KIND as BTF_KIND };

/**
 * What a BPF object holds, as the agent will see it: its programs (global functions in a
 * program section, with that section's name: `tc`, `xdp`, …), its maps (`.maps` definitions)
 * and its load-time constants (variables in `.rodata`).
 * @param {string | URL} path
 */
export function inspectBpfObject(path) {
  const what = String(path instanceof URL ? path.pathname : path);
  const elf = parseElf(readFileSync(path), what);
  const sectionName = (/** @type {number} */ i) => elf.sections[i]?.name ?? '';
  const programs = elf.symbols
    .filter((s) => s.type === STT_FUNC && s.bind === STB_GLOBAL && s.section > 0 && s.section < elf.sections.length)
    .filter((s) => ((elf.sections[s.section]?.flags ?? 0n) & BigInt(SHF_EXECINSTR)) !== 0n && sectionName(s.section) !== '.text')
    .map((s) => ({ name: s.name, section: sectionName(s.section) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const maps = elf.symbols
    .filter((s) => s.type === STT_OBJECT && sectionName(s.section) === '.maps')
    .map((s) => s.name)
    .sort();
  /** @type {string[]} */
  let constants = [];
  if (elf.sections.some((s) => s.name === '.BTF')) {
    const types = parseBtf(elf, what);
    const rodata = types.find((t) => t?.kind === KIND.DATASEC && t.name === '.rodata');
    constants = (rodata?.vars ?? []).map((v) => types[v]?.name ?? '').filter(Boolean).sort();
  }
  const licenseSection = elf.sections.find((s) => s.name === 'license');
  const license = licenseSection ? elf.data.toString('latin1', licenseSection.offset, licenseSection.offset + licenseSection.size).replace(/\0+$/, '') : undefined;
  return { machine: elf.machine, isBpf: elf.machine === EM_BPF, programs, maps, constants, license };
}
