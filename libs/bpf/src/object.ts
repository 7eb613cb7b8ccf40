// A BPF ELF object: open, configure (load-time constants, pinning, map reuse), load, then
// hand out its programs and maps by name.
import { existsSync, statfsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Codec } from './codec.js';
import { BpfError, toBpfError, wrap } from './errors.js';
import { BpfMap, isPerCpuType, mapInfoFrom, PerCpuMap, type MapInfo } from './map.js';
import { native, type NativeMapInfo, type NativeObject, type NativeProgramInfo } from './native.js';
import { PROG_ARRAY_CODECS, ProgramArray } from './progarray.js';
import { testRun, testRunAsync, type TestRunOptions, type TestRunResult } from './testrun.js';

/** Where Cilia pins its maps unless told otherwise. */
export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/cilia';
const BPFFS_MAGIC = 0xcafe4a11;

/** A load-time constant: integers by the size of the C global, booleans as one byte. */
export type ConstantValue = number | bigint | boolean | Uint8Array;

export interface OpenOptions {
  /**
   * bpffs directory for maps declared with `LIBBPF_PIN_BY_NAME` (reused when already pinned
   * there, created and pinned otherwise) and for maps named in `pin`. Default
   * {@link DEFAULT_PIN_ROOT}. It must exist on a bpffs mount (see `ensureBpffs`).
   */
  readonly pinRoot?: string;
  /** Further maps to pin (or reuse) under `pinRoot` by their name. */
  readonly pin?: readonly string[];
  /** Load-time constants (`volatile const` globals in .rodata) by name. */
  readonly constants?: Readonly<Record<string, ConstantValue>>;
  /** Programs not to load (e.g. ones needing a kernel feature this node lacks). */
  readonly skipPrograms?: readonly string[];
}

/** A program of a loaded object. */
export class BpfProgram {
  constructor(
    readonly name: string,
    readonly section: string,
    /** `enum bpf_prog_type` value. */
    readonly type: number,
    private readonly owner: BpfObject,
    private readonly fdValue: number,
  ) {}

  /** Program fd, valid while the object is open. */
  get fd(): number {
    this.owner.assertOpen();
    return this.fdValue;
  }

  /** The kernel's id for this program (what `bpftool prog show` lists). */
  get id(): number {
    return wrap(() => native().progId(this.fd), `program '${this.name}'`);
  }

  /** Runs the program once or `repeat` times on the given input (BPF_PROG_TEST_RUN). */
  testRun(options: TestRunOptions = {}): TestRunResult {
    return testRun(this, options);
  }

  /** Like testRun, on a worker thread: the event loop (e.g. ring buffer consumers) keeps running. */
  testRunAsync(options: TestRunOptions = {}): Promise<TestRunResult> {
    return testRunAsync(this, options);
  }
}

function toPath(path: string | URL): string {
  return path instanceof URL ? fileURLToPath(path) : path;
}

/**
 * An eBPF object file. Typical use:
 * ```ts
 * const obj = BpfObject.open(new URL('./bpf/lb.o', import.meta.url), { constants: { nodeId: 3 } });
 * obj.load();
 * const services = obj.map('lb_services', { key: ServiceKey, value: ServiceValue });
 * ```
 */
export class BpfObject {
  readonly path: string;
  readonly pinRoot: string;
  private handle: NativeObject | undefined;
  private loaded = false;

  private constructor(path: string, pinRoot: string, handle: NativeObject) {
    this.path = path;
    this.pinRoot = pinRoot;
    this.handle = handle;
  }

  /** Opens (parses) an object file; nothing touches the kernel until `load()`. */
  static open(path: string | URL, options: OpenOptions = {}): BpfObject {
    const file = toPath(path);
    if (!existsSync(file)) throw new BpfError(`BPF object ${file} does not exist`, 2, 'ENOENT');
    const pinRoot = options.pinRoot ?? DEFAULT_PIN_ROOT;
    const handle = wrap(() => new (native().NativeObject)(file, pinRoot));
    const obj = new BpfObject(file, pinRoot, handle);
    try {
      for (const name of options.pin ?? []) obj.pinMap(name);
      for (const [name, value] of Object.entries(options.constants ?? {})) obj.setConstant(name, value);
      for (const name of options.skipPrograms ?? []) obj.skipProgram(name);
    } catch (err) {
      obj.close();
      throw err;
    }
    return obj;
  }

  /**
   * Opens and loads `path` in one step, closing it again if either fails. `builtBy` names the
   * package whose build makes the object: a missing or unreadable file then says which to build.
   */
  static openAndLoad(path: string | URL, options: OpenOptions & { readonly builtBy?: string } = {}): BpfObject {
    let obj: BpfObject;
    try {
      obj = BpfObject.open(path, options);
    } catch (err) {
      if (!options.builtBy) throw err;
      throw new Error(`cannot open ${toPath(path)} (is ${options.builtBy} built?): ${(err as Error).message}`);
    }
    try {
      obj.load();
    } catch (err) {
      obj.close();
      throw err;
    }
    return obj;
  }

  /** @internal */
  assertOpen(): NativeObject {
    if (!this.handle) throw new Error(`BPF object ${this.path} is closed`);
    return this.handle;
  }

  /** Global variables (name, section, size) this object declares. */
  globals(): Array<{ name: string; section: string; size: number }> {
    return this.assertOpen()
      .globals()
      .map(({ name, section, size }) => ({ name, section, size }));
  }

  /** Sets a load-time constant (or initial value of a .data/.bss global) before load. */
  setConstant(name: string, value: ConstantValue): void {
    const handle = this.assertOpen();
    const global = handle.globals().find((g) => g.name === name);
    if (!global) {
      const known = handle
        .globals()
        .map((g) => g.name)
        .join(', ');
      throw new TypeError(`${this.path}: no global named '${name}' (globals: ${known || 'none'})`);
    }
    const bytes = encodeConstant(name, value, global.size);
    wrap(() => handle.setGlobal(global.section, global.offset, bytes), `${this.path}: constant '${name}'`);
  }

  /** Pins (or reuses the pin of) map `name` under the pin root. */
  pinMap(name: string): void {
    const handle = this.assertOpen();
    wrap(() => handle.setMapPinPath(name, `${this.pinRoot}/${name}`), this.path);
  }

  /** Makes map `name` use an existing map (same type and sizes) instead of creating one. */
  reuseMap(name: string, map: BpfMap<unknown, unknown>): void {
    const handle = this.assertOpen();
    wrap(() => handle.reuseMapFd(name, map.fd), this.path);
  }

  /** Overrides a map's max_entries before load. */
  setMaxEntries(name: string, maxEntries: number): void {
    const handle = this.assertOpen();
    wrap(() => handle.setMapMaxEntries(name, maxEntries), this.path);
  }

  /** Leaves a program out of the load. */
  skipProgram(name: string): void {
    const handle = this.assertOpen();
    wrap(() => handle.setAutoload(name, false), this.path);
  }

  private checkPinRoot(): void {
    const pinned = this.assertOpen()
      .maps()
      .filter((m) => m.pinPath !== null);
    if (pinned.length === 0) return;
    const names = pinned.map((m) => m.name).join(', ');
    if (!existsSync(this.pinRoot)) {
      throw new BpfError(
        `${this.path}: pin root ${this.pinRoot} does not exist (needed to pin ${names}); create it on bpffs first (ensureBpffs)`,
        2,
        'ENOENT',
      );
    }
    if (statfsSync(this.pinRoot).type !== BPFFS_MAGIC) {
      throw new BpfError(
        `${this.path}: pin root ${this.pinRoot} is not on a bpffs mount (needed to pin ${names})`,
        22,
        'EINVAL',
      );
    }
  }

  /**
   * A pinned map is reused as it is, entries and size: an object built (or configured) with
   * another max_entries takes the pinned one, where libbpf would refuse the reuse. A size change
   * so waits for the pin to go (a reboot, `cilia cleanup`) instead of failing or flushing it.
   */
  private adoptPinnedSizes(): void {
    const handle = this.assertOpen();
    for (const m of handle.maps()) {
      if (m.pinPath === null || !existsSync(m.pinPath)) continue;
      const pinned = BpfMap.pinnedInfo(m.pinPath);
      if (pinned.maxEntries !== m.maxEntries) wrap(() => handle.setMapMaxEntries(m.name, pinned.maxEntries), this.path);
    }
  }

  /** Loads maps and programs into the kernel; a verifier rejection throws a BpfError. */
  load(): void {
    const handle = this.assertOpen();
    this.checkPinRoot();
    this.adoptPinnedSizes();
    try {
      handle.load();
    } catch (err) {
      throw toBpfError(err);
    }
    this.loaded = true;
  }

  /** Like load(), off the event loop: big programs take the verifier a while. */
  async loadAsync(): Promise<void> {
    const handle = this.assertOpen();
    this.checkPinRoot();
    this.adoptPinnedSizes();
    try {
      await handle.loadAsync();
    } catch (err) {
      throw toBpfError(err);
    }
    this.loaded = true;
  }

  private requireLoaded(): NativeObject {
    const handle = this.assertOpen();
    if (!this.loaded) throw new Error(`BPF object ${this.path} is not loaded yet`);
    return handle;
  }

  private programInfo(name: string): NativeProgramInfo {
    const programs = this.requireLoaded().programs();
    const info = programs.find((p) => p.name === name);
    if (!info) {
      throw new TypeError(`${this.path}: no program named '${name}' (programs: ${programs.map((p) => p.name).join(', ')})`);
    }
    if (info.fd < 0) throw new TypeError(`${this.path}: program '${name}' was not loaded (skipped)`);
    return info;
  }

  /** Names of the programs in this object. */
  programNames(): string[] {
    return this.assertOpen()
      .programs()
      .map((p) => p.name);
  }

  /** Names of the (non-internal) maps in this object. */
  mapNames(): string[] {
    return this.assertOpen()
      .maps()
      .filter((m) => !m.internal)
      .map((m) => m.name);
  }

  /** A loaded program by name. */
  program(name: string): BpfProgram {
    const info = this.programInfo(name);
    return new BpfProgram(info.name, info.section, info.type, this, info.fd);
  }

  private mapInfo(name: string): NativeMapInfo {
    const maps = this.requireLoaded().maps();
    const info = maps.find((m) => m.name === name);
    if (!info) {
      throw new TypeError(
        `${this.path}: no map named '${name}' (maps: ${maps
          .filter((m) => !m.internal)
          .map((m) => m.name)
          .join(', ')})`,
      );
    }
    return info;
  }

  /** Static facts about one of its maps (type, key and value size, max_entries). */
  mapDescription(name: string): MapInfo {
    return mapInfoFrom(this.mapInfo(name));
  }

  /** A map by name with optional key/value codecs (raw Buffers otherwise). */
  map<K = Buffer, V = Buffer>(name: string, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): BpfMap<K, V> {
    const info = this.mapInfo(name);
    if (isPerCpuType(info.type)) throw new TypeError(`${this.path}: map '${name}' is per-CPU; use perCpuMap()`);
    return new BpfMap<K, V>(info.fd, mapInfoFrom(info), codecs, { owner: this });
  }

  /** A per-CPU map by name; `value` is the codec of one CPU's value. */
  perCpuMap<K = Buffer, V = Buffer>(name: string, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): PerCpuMap<K, V> {
    const info = this.mapInfo(name);
    if (!isPerCpuType(info.type)) throw new TypeError(`${this.path}: map '${name}' is not per-CPU; use map()`);
    return new PerCpuMap<K, V>(info.fd, mapInfoFrom(info), codecs, { owner: this });
  }

  /** A program array (tail-call table) by name. */
  programArray(name: string): ProgramArray {
    if (this.mapInfo(name).type !== 3) throw new TypeError(`${this.path}: map '${name}' is not a program array`);
    return new ProgramArray(this.map(name, PROG_ARRAY_CODECS));
  }

  /**
   * Releases the object's fds. Pinned maps and attached programs stay in the kernel
   * (that is how the datapath outlives an agent restart).
   */
  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }
}

function encodeConstant(name: string, value: ConstantValue, size: number): Uint8Array {
  if (value instanceof Uint8Array) {
    if (value.length !== size) throw new RangeError(`constant '${name}' is ${size} bytes, got ${value.length}`);
    return value;
  }
  const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  const bits = BigInt(size * 8);
  // Accept the signed and the unsigned range: the C type's signedness is not in .rodata.
  if (size > 8 || n >= 1n << bits || n < -(1n << (bits - 1n))) {
    throw new RangeError(`constant '${name}' (${size} bytes) cannot hold ${String(value)}`);
  }
  const out = new Uint8Array(size);
  let v = BigInt.asUintN(size * 8, n);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
