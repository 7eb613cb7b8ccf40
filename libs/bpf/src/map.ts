// Typed access to one BPF map. Keys and values go through codecs into buffers the map owns,
// so lookups and updates allocate no buffers; batch operations reuse growing scratch arrays.
import type { Codec } from './codec.js';
import { BpfError, toBpfError } from './errors.js';
import { native, type NativeMapInfo } from './native.js';

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST, or a raw flags number (e.g. BPF_F_LOCK = 4). */
export type UpdateFlag = 'any' | 'noexist' | 'exist' | number;

const UPDATE_FLAGS = { any: 0, noexist: 1, exist: 2 } as const;
const PERCPU_TYPES = new Set([5, 6, 10, 20]); // percpu_hash, percpu_array, lru_percpu_hash, percpu_cgroup_storage
// EINVAL, EOPNOTSUPP, and the kernel-internal ENOTSUPP some map types return for batch ops.
const NO_BATCH_ERRNOS = new Set([22, 95, 524]);

function flagValue(flag: UpdateFlag): number {
  return typeof flag === 'number' ? flag : UPDATE_FLAGS[flag];
}

/** Map types by name, as `MapSpec.type` accepts them. */
export const MAP_TYPES = {
  hash: 1,
  array: 2,
  prog_array: 3,
  percpu_hash: 5,
  percpu_array: 6,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  ringbuf: 27,
} as const;

/** What `BpfMap.create` makes. */
export interface MapSpec {
  readonly type: keyof typeof MAP_TYPES | number;
  /** Up to 15 characters. */
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** BPF_F_* map flags, e.g. BPF_F_NO_PREALLOC = 1 (required for LPM tries). */
  readonly flags?: number;
  /** For array_of_maps / hash_of_maps: a map of the kind the outer map holds. */
  readonly innerMap?: { readonly fd: number };
}

/** Static facts about a map. */
export interface MapInfo {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

/** Whatever owns a map's fd: using the map after the owner closed throws. */
interface MapOwner {
  assertOpen(): unknown;
}

/** @internal where a map's fd comes from. */
export interface MapSource {
  /** The map opened its own fd (from a pin) and closes it. */
  readonly ownsFd?: boolean;
  /** The object whose fd this is. */
  readonly owner?: MapOwner;
  /** Bytes per value slot as the kernel copies it (per-CPU: rounded to 8, times CPUs). */
  readonly valueStride?: number;
}

/** Raw bytes in, raw bytes out: the identity codec for a given size. */
function rawCodec(size: number, what: string): Codec<Buffer> {
  return {
    size,
    align: 1,
    encode(v, b, o) {
      if (v.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${v.length}`);
      v.copy(b, o);
    },
    decode: (b, o) => Buffer.from(b.subarray(o, o + size)),
  };
}

/**
 * A map of `K → V`. Obtain one from `BpfObject.map()` or `BpfMap.openPinned()`.
 * For per-CPU maps use {@link PerCpuMap}.
 */
export class BpfMap<K = Buffer, V = Buffer> {
  readonly info: MapInfo;
  protected readonly keyCodec: Codec<K>;
  protected readonly valueCodec: Codec<V>;
  protected readonly key: Buffer;
  protected readonly next: Buffer;
  protected readonly value: Buffer;
  /** Bytes of one value slot as the kernel copies it (per-CPU maps: one slot per CPU). */
  protected readonly valueStride: number;
  private fdValue: number;
  private readonly ownsFd: boolean;
  private readonly owner: MapOwner | undefined;
  private batchKeys: Buffer = Buffer.alloc(0);
  private batchValues: Buffer = Buffer.alloc(0);
  private batchCursor: Buffer;
  private batchCursorNext: Buffer;
  private batchSupported = true;

  /** @internal use BpfObject.map() or BpfMap.openPinned() */
  constructor(
    fd: number,
    info: MapInfo,
    codecs: { key?: Codec<K>; value?: Codec<V> } = {},
    source: MapSource = {},
  ) {
    const valueStride = source.valueStride ?? info.valueSize;
    this.fdValue = fd;
    this.info = info;
    this.ownsFd = source.ownsFd ?? false;
    this.owner = source.owner;
    this.keyCodec = codecs.key ?? (rawCodec(info.keySize, `map '${info.name}': key`) as unknown as Codec<K>);
    this.valueCodec = codecs.value ?? (rawCodec(info.valueSize, `map '${info.name}': value`) as unknown as Codec<V>);
    if (this.keyCodec.size !== info.keySize) {
      throw new TypeError(`map '${info.name}': key codec is ${this.keyCodec.size} bytes, the map's key is ${info.keySize}`);
    }
    if (this.valueCodec.size !== info.valueSize) {
      throw new TypeError(
        `map '${info.name}': value codec is ${this.valueCodec.size} bytes, the map's value is ${info.valueSize}`,
      );
    }
    this.valueStride = valueStride;
    this.key = Buffer.alloc(Math.max(info.keySize, 1));
    this.next = Buffer.alloc(Math.max(info.keySize, 1));
    this.value = Buffer.alloc(valueStride);
    this.batchCursor = Buffer.alloc(Math.max(info.keySize, 8));
    this.batchCursorNext = Buffer.alloc(Math.max(info.keySize, 8));
  }

  /** The description of the map pinned at `path` (any type, per-CPU included), without keeping it open. */
  static pinnedInfo(path: string): MapInfo {
    const n = native();
    const fd = openPinnedFd(path);
    try {
      return n.mapInfo(fd);
    } finally {
      n.closeFd(fd);
    }
  }

  /** Opens a map pinned in bpffs (e.g. `/sys/fs/bpf/cilia/ipcache`). Close it when done. */
  static openPinned<K = Buffer, V = Buffer>(path: string, codecs: { key?: Codec<K>; value?: Codec<V> } = {}): BpfMap<K, V> {
    const n = native();
    const fd = openPinnedFd(path);
    const info = n.mapInfo(fd);
    if (PERCPU_TYPES.has(info.type)) {
      n.closeFd(fd);
      throw new TypeError(`map pinned at ${path} is per-CPU; open it with PerCpuMap.openPinnedPerCpu()`);
    }
    return new BpfMap<K, V>(fd, info, codecs, { ownsFd: true });
  }

  /**
   * Creates a map from user space (not from an object), e.g. an inner map to store in a
   * map-in-map, or a scratch map. The map lives while this handle or a pin holds it.
   * `type` is `enum bpf_map_type` (see {@link MAP_TYPES}).
   */
  static create<K = Buffer, V = Buffer>(
    spec: MapSpec,
    codecs: { key?: Codec<K>; value?: Codec<V> } = {},
  ): BpfMap<K, V> {
    const type = typeof spec.type === 'string' ? MAP_TYPES[spec.type] : spec.type;
    if (type === undefined) throw new TypeError(`map '${spec.name}': unknown map type '${String(spec.type)}'`);
    if (PERCPU_TYPES.has(type)) throw new TypeError(`map '${spec.name}': per-CPU maps are created from objects, not from user space`);
    const n = native();
    let fd: number;
    try {
      fd = n.mapCreate(type, spec.name, spec.keySize, spec.valueSize, spec.maxEntries, spec.flags ?? 0, spec.innerMap?.fd);
    } catch (err) {
      throw toBpfError(err);
    }
    return new BpfMap<K, V>(fd, n.mapInfo(fd), codecs, { ownsFd: true });
  }

  /** Pins this map at `path` in bpffs, so it outlives this process. */
  pin(path: string): void {
    try {
      native().objPin(this.fd, path);
    } catch (err) {
      throw toBpfError(err, `map '${this.info.name}'`);
    }
  }

  /** The map's file descriptor (valid until the owning object or this map is closed). */
  get fd(): number {
    if (this.fdValue < 0) throw new Error(`map '${this.info.name}' is closed`);
    this.owner?.assertOpen();
    return this.fdValue;
  }

  /** The kernel's id of this map (what a program's `mapIds` list). */
  get id(): number {
    try {
      return native().mapInfo(this.fd).id;
    } catch (err) {
      throw toBpfError(err);
    }
  }

  protected fail(err: unknown, op: string): never {
    const e = toBpfError(err, `map '${this.info.name}'`);
    if (e instanceof BpfError && e.code === 'E2BIG' && op === 'update') {
      throw new BpfError(
        `map '${this.info.name}' is full (max_entries ${this.info.maxEntries}): ${e.message}`,
        e.errno,
        e.code,
        { cause: e },
      );
    }
    throw e;
  }

  protected encodeKey(key: K): Buffer {
    this.keyCodec.encode(key, this.key, 0);
    return this.key;
  }

  /** The value stored under `key`, or undefined. */
  lookup(key: K): V | undefined {
    let found: boolean;
    try {
      found = native().mapLookup(this.fd, this.encodeKey(key), this.value);
    } catch (err) {
      this.fail(err, 'lookup');
    }
    return found ? this.valueCodec.decode(this.value, 0) : undefined;
  }

  /** Stores `value` under `key`; `flag` 'noexist' fails with EEXIST, 'exist' with ENOENT. */
  update(key: K, value: V, flag: UpdateFlag = 'any'): void {
    this.valueCodec.encode(value, this.value, 0);
    try {
      native().mapUpdate(this.fd, this.encodeKey(key), this.value, flagValue(flag));
    } catch (err) {
      this.fail(err, 'update');
    }
  }

  /** Removes `key`; false when it was not there. */
  delete(key: K): boolean {
    try {
      return native().mapDelete(this.fd, this.encodeKey(key));
    } catch (err) {
      this.fail(err, 'delete');
    }
  }

  /** Every key, by get-next-key. Entries added or removed meanwhile may or may not show. */
  *keys(): IterableIterator<K> {
    const n = native();
    let hasPrev = false;
    for (;;) {
      let more: boolean;
      try {
        more = n.mapNextKey(this.fd, hasPrev ? this.key : null, this.next);
      } catch (err) {
        this.fail(err, 'iterate');
      }
      if (!more) return;
      this.next.copy(this.key);
      hasPrev = true;
      yield this.keyCodec.decode(this.next, 0);
    }
  }

  /** Every entry, by get-next-key then lookup (entries deleted meanwhile are skipped). */
  *entries(): IterableIterator<[K, V]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value !== undefined) yield [key, value];
    }
  }

  private ensureBatch(count: number): void {
    if (this.batchKeys.length < count * this.info.keySize) this.batchKeys = Buffer.alloc(count * this.info.keySize);
    if (this.batchValues.length < count * this.valueStride) this.batchValues = Buffer.alloc(count * this.valueStride);
  }

  /**
   * Writes many entries in one syscall per chunk (BPF_MAP_UPDATE_BATCH), or one by one where
   * the kernel has no batch op for this map type. Returns the number written.
   */
  updateBatch(entries: ReadonlyArray<readonly [K, V]>, flag: UpdateFlag = 'any'): number {
    const count = entries.length;
    if (count === 0) return 0;
    this.ensureBatch(count);
    const ks = this.info.keySize;
    for (let i = 0; i < count; i++) {
      const entry = entries[i] as readonly [K, V];
      this.keyCodec.encode(entry[0], this.batchKeys, i * ks);
      this.encodeValueAt(entry[1], this.batchValues, i * this.valueStride);
    }
    return this.updateBatchRaw(this.batchKeys, this.batchValues, count, flag);
  }

  /** Encodes one value into a batch slot (per-CPU maps replicate it to every CPU). */
  protected encodeValueAt(value: V, buf: Buffer, offset: number): void {
    this.valueCodec.encode(value, buf, offset);
  }

  /**
   * Batch update from pre-encoded arrays: `count` keys of keySize bytes and `count` values of
   * the value stride, back to back. The fastest path; used by benchmarks and bulk loaders.
   */
  updateBatchRaw(keys: Buffer, values: Buffer, count: number, flag: UpdateFlag = 'any'): number {
    const n = native();
    const flags = flagValue(flag);
    if (this.batchSupported) {
      try {
        return n.mapUpdateBatch(this.fd, keys, values, count, flags);
      } catch (err) {
        const e = err as { errno?: number; count?: number };
        if (!(e.errno !== undefined && NO_BATCH_ERRNOS.has(e.errno) && !e.count)) this.fail(err, 'update');
        this.batchSupported = false;
      }
    }
    const ks = this.info.keySize;
    for (let i = 0; i < count; i++) {
      try {
        n.mapUpdate(this.fd, keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * this.valueStride), flags);
      } catch (err) {
        this.fail(err, 'update');
      }
    }
    return count;
  }

  /** Deletes many keys; returns how many were deleted. Absent keys stop a kernel batch, so
   * they are retried one by one. */
  deleteBatch(keys: readonly K[]): number {
    const count = keys.length;
    if (count === 0) return 0;
    this.ensureBatch(count);
    const ks = this.info.keySize;
    for (let i = 0; i < count; i++) this.keyCodec.encode(keys[i] as K, this.batchKeys, i * ks);
    const n = native();
    let done = 0;
    if (this.batchSupported) {
      try {
        return n.mapDeleteBatch(this.fd, this.batchKeys, count);
      } catch (err) {
        const e = err as { errno?: number; count?: number };
        if (e.errno !== 2 && !(e.errno !== undefined && NO_BATCH_ERRNOS.has(e.errno))) this.fail(err, 'delete');
        if (e.errno !== 2) this.batchSupported = false;
        done = e.count ?? 0;
      }
    }
    let deleted = done;
    for (let i = done; i < count; i++) {
      try {
        if (n.mapDelete(this.fd, this.batchKeys.subarray(i * ks, (i + 1) * ks))) deleted++;
      } catch (err) {
        this.fail(err, 'delete');
      }
    }
    return deleted;
  }

  /**
   * Reads every entry in chunks of `chunk` (BPF_MAP_LOOKUP_BATCH), falling back to
   * iteration where the kernel has no batch lookup for this map type.
   */
  lookupBatch(chunk = 4096): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    this.scanBatch(chunk, false, out);
    return out;
  }

  /** Reads and removes every entry (BPF_MAP_LOOKUP_AND_DELETE_BATCH where supported). */
  drainBatch(chunk = 4096): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    this.scanBatch(chunk, true, out);
    return out;
  }

  protected decodeValueAt(buf: Buffer, offset: number): V {
    return this.valueCodec.decode(buf, offset);
  }

  private scanBatch(chunk: number, andDelete: boolean, out: Array<[K, V]>): void {
    const n = native();
    if (this.batchSupported) {
      this.ensureBatch(chunk);
      let first = true;
      try {
        for (;;) {
          const r = n.mapLookupBatch(
            this.fd,
            first ? null : this.batchCursor,
            this.batchCursorNext,
            this.batchKeys,
            this.batchValues,
            chunk,
            andDelete,
          );
          for (let i = 0; i < r.count; i++) {
            out.push([
              this.keyCodec.decode(this.batchKeys, i * this.info.keySize),
              this.decodeValueAt(this.batchValues, i * this.valueStride),
            ]);
          }
          if (r.done) return;
          this.batchCursorNext.copy(this.batchCursor);
          first = false;
        }
      } catch (err) {
        const e = err as { errno?: number };
        if (!(first && e.errno !== undefined && NO_BATCH_ERRNOS.has(e.errno))) this.fail(err, 'lookup');
        this.batchSupported = false;
      }
    }
    const keys = [...this.keys()];
    for (const key of keys) {
      const value = this.lookupSlot(key);
      if (value === undefined) continue;
      out.push([key, value]);
      if (andDelete) this.delete(key);
    }
  }

  protected lookupSlot(key: K): V | undefined {
    return this.lookup(key);
  }

  /** Closes the fd if this map owns it (opened from a pin); objects close their own maps. */
  close(): void {
    if (this.ownsFd && this.fdValue >= 0) native().closeFd(this.fdValue);
    this.fdValue = -1;
  }
}

/**
 * A per-CPU map: each key holds one value per possible CPU. `lookup` returns them all;
 * `sum` adds numeric ones up; `update` writes one value to every CPU or one per CPU.
 */
export class PerCpuMap<K = Buffer, V = Buffer> extends BpfMap<K, V[]> {
  readonly cpus: number;
  private readonly elemCodec: Codec<V>;
  private readonly slot: number;

  /** @internal use BpfObject.perCpuMap() or PerCpuMap.openPinnedPerCpu() */
  constructor(fd: number, info: MapInfo, codecs: { key?: Codec<K>; value?: Codec<V> } = {}, source: MapSource = {}) {
    const cpus = native().numPossibleCpus();
    // The kernel copies per-CPU values in 8-byte aligned slots.
    const slot = Math.ceil(info.valueSize / 8) * 8;
    const elem = codecs.value ?? (rawCodec(info.valueSize, `map '${info.name}': value`) as unknown as Codec<V>);
    if (elem.size !== info.valueSize) {
      throw new TypeError(`map '${info.name}': value codec is ${elem.size} bytes, the map's value is ${info.valueSize}`);
    }
    const arrayCodec: Codec<V[]> = {
      size: info.valueSize,
      align: elem.align,
      encode: () => {
        throw new Error('unreachable: PerCpuMap encodes per slot');
      },
      decode: () => {
        throw new Error('unreachable: PerCpuMap decodes per slot');
      },
    };
    super(fd, info, { key: codecs.key, value: arrayCodec }, { ...source, valueStride: slot * cpus });
    this.cpus = cpus;
    this.slot = slot;
    this.elemCodec = elem;
  }

  /** Opens a per-CPU map pinned in bpffs. */
  static openPinnedPerCpu<K = Buffer, V = Buffer>(
    path: string,
    codecs: { key?: Codec<K>; value?: Codec<V> } = {},
  ): PerCpuMap<K, V> {
    const n = native();
    const fd = openPinnedFd(path);
    const info = n.mapInfo(fd);
    if (!PERCPU_TYPES.has(info.type)) {
      n.closeFd(fd);
      throw new TypeError(`map pinned at ${path} is not per-CPU; open it with BpfMap.openPinned()`);
    }
    return new PerCpuMap<K, V>(fd, info, codecs, { ownsFd: true });
  }

  protected override decodeValueAt(buf: Buffer, offset: number): V[] {
    const out = new Array<V>(this.cpus);
    for (let c = 0; c < this.cpus; c++) out[c] = this.elemCodec.decode(buf, offset + c * this.slot);
    return out;
  }

  protected override encodeValueAt(values: V[], buf: Buffer, offset: number): void {
    const perCpu = values.length !== 1;
    if (perCpu && values.length !== this.cpus) {
      throw new RangeError(`map '${this.info.name}': expected 1 or ${this.cpus} per-CPU values, got ${values.length}`);
    }
    buf.fill(0, offset, offset + this.valueStride);
    for (let c = 0; c < this.cpus; c++) this.elemCodec.encode(values[perCpu ? c : 0] as V, buf, offset + c * this.slot);
  }

  /** One value per possible CPU, or undefined when the key is absent. */
  override lookup(key: K): V[] | undefined {
    let found: boolean;
    try {
      found = native().mapLookup(this.fd, this.encodeKey(key), this.value);
    } catch (err) {
      this.fail(err, 'lookup');
    }
    return found ? this.decodeValueAt(this.value, 0) : undefined;
  }

  /** Writes `values` (one per CPU, or a single value copied to every CPU). */
  override update(key: K, values: V[], flag: UpdateFlag = 'any'): void {
    this.encodeValueAt(values, this.value, 0);
    try {
      native().mapUpdate(this.fd, this.encodeKey(key), this.value, flagValue(flag));
    } catch (err) {
      this.fail(err, 'update');
    }
  }

  /** Sum over CPUs of a numeric (number or bigint) value; undefined when absent. */
  sum(key: K): V | undefined {
    const values = this.lookup(key);
    if (values === undefined) return undefined;
    if (typeof values[0] === 'bigint') return (values as bigint[]).reduce((a, b) => a + b, 0n) as V;
    if (typeof values[0] === 'number') return (values as number[]).reduce((a, b) => a + b, 0) as V;
    throw new TypeError(`map '${this.info.name}': sum() needs a number or bigint value codec`);
  }
}

/** An fd of the object pinned at `path`, errors as BpfError. */
function openPinnedFd(path: string): number {
  try {
    return native().objGet(path);
  } catch (err) {
    throw toBpfError(err);
  }
}

/** @internal */
export function isPerCpuType(type: number): boolean {
  return PERCPU_TYPES.has(type);
}

/** @internal */
export function mapInfoFrom(m: NativeMapInfo): MapInfo {
  return {
    name: m.name,
    type: m.type,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
  };
}
