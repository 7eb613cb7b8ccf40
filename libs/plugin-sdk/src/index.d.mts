// Types of @cilia/plugin-sdk's JavaScript API (src/index.mjs).

/** A program of a BPF object: a global function in a program section. */
export interface BpfProgramInfo {
  readonly name: string;
  /** Its ELF section: `tc`, `xdp`, `cgroup/connect4`, … (the program type libbpf infers). */
  readonly section: string;
}

/** What a compiled BPF object holds, read from its ELF and BTF. */
export interface BpfObjectInfo {
  /** ELF e_machine: 247 (EM_BPF) for an object built for the BPF target. */
  readonly machine: number;
  readonly isBpf: boolean;
  readonly programs: readonly BpfProgramInfo[];
  /** Names of its map definitions (`.maps`), its own and the pinned ones it shares. */
  readonly maps: readonly string[];
  /** Its load-time constants: `const volatile` globals (`.rodata`), which `bpf:` `constants` may set. */
  readonly constants: readonly string[];
  readonly license?: string;
}

/** Reads a compiled object's programs, maps and constants (no kernel, no libbpf needed). */
export function inspectBpfObject(path: string | URL): BpfObjectInfo;

/** A struct or union member: byte offset and size, or bit offset and width for a bit-field. */
export type MemberLayout = { readonly name: string; readonly offset: number; readonly size: number } | { readonly name: string; readonly bitOffset: number; readonly bits: number };
export interface RecordLayout {
  readonly size: number;
  readonly members: readonly MemberLayout[];
}
export interface EnumLayout {
  readonly size: number;
  readonly values: Readonly<Record<string, number | string>>;
}
/** `cilia_*` types by `struct cilia_ctx`, `union …`, `enum cilia_slot`. */
export type AbiLayout = Readonly<Record<string, RecordLayout | EnumLayout>>;

/** The `cilia_*` types an object (path or bytes) carries in its BTF. */
export function objectLayout(object: string | URL | Uint8Array, what?: string): AbiLayout;
/** One line per difference between `actual` and `reference` (`struct cilia_ctx.slot: offset 11, …`); empty when they agree. */
export function compareLayout(actual: AbiLayout, reference: AbiLayout): string[];

/** The directory holding `include/cilia/*.h` and `lib/*.h` this package ships. */
export const headerRoot: string;
/** The reference layout of the `cilia_*` types of those headers (`dist/layout.json`). */
export const layoutFile: string;
/** `@cilia/plugin-sdk <version>`. */
export const sdkName: string;
/** The reference layout; throws when this copy of the package was not built. */
export function referenceLayout(): { readonly types: AbiLayout; readonly name: string };

/** clang's flags for every object. */
export const CLANG_FLAGS: readonly string[];
/** clang's arguments to compile `source` into `object` against the headers in `headerRoot`. */
export function clangArgs(source: string, object: string, headerRoot: string): string[];
