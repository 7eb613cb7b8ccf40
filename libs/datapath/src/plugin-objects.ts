import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachCgroup, attachTc, BpfMap, BpfObject, codec, ensureBpffs, isPerCpuType, MAP_TYPES, ProgramArray, type PerCpuMap } from '@cilia/bpf';
import { bpfObjectName, type AttachPoint, type BpfMapView, type CgroupTarget, type LoadedBpfObject, type Logger, type ObjectInstall, type ProgramPlacement, type SlotAssignment } from '@cilia/core';
import { MapName, slotIndex, SLOTS_PER_ATTACH_POINT, type TcAttachPoint } from './maps/index.js';
import { applyMapSizes } from './map-sizes.js';

/** Slots the base objects fill themselves: a plugin placing a program there is refused. */
const BASE_SLOTS: ReadonlyMap<string, string> = new Map([
  ['from-container/policy', 'policy.o (L3/L4 policy)'],
  ['to-container/policy', 'policy.o (L3/L4 policy)'],
]);

/** What {@link PluginObjects} needs. */
export interface PluginObjectsOptions {
  readonly pinRoot: string;
  /** Where the record of which plugin fills which slot persists (`<dir>/datapath-slots.json`); none: kept in memory. */
  readonly stateDir?: string;
  /** The cgroup v2 directory plugins' socket hooks attach to by default (`agent.cgroupRoot`). */
  readonly cgroupRoot?: string;
  /** Capacities of shared maps an object may be the first to create (see applyMapSizes). */
  readonly mapSizes?: Readonly<Record<string, number>>;
  readonly logger: Logger;
}

interface Target {
  readonly program: string;
  readonly index: number;
  readonly attach: AttachPoint;
  readonly slot: ProgramPlacement['slot'];
}

/**
 * Plugins' objects: loaded against the agent's pin root (sharing every pinned map), their
 * programs put into `cilia_tc_slots` — each an atomic swap — and the plugin filling each slot
 * recorded, so the slots of a plugin that left the config can be cleared at the next start.
 * Works before the base objects load: the slot table is created and pinned if no object has
 * pinned it yet, and the base reuses it.
 */
export class PluginObjects {
  readonly #o: PluginObjectsOptions;
  readonly #log: Logger;
  readonly #objects = new Map<string, BpfObject[]>();
  #table?: { map: BpfMap<number, number>; slots: ProgramArray };
  #records?: SlotAssignment[];

  constructor(options: PluginObjectsOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  async install(owner: string, objects: readonly ObjectInstall[]): Promise<LoadedBpfObject[]> {
    ensureBpffs(this.#o.pinRoot);
    const loaded: Array<{ name: string; file: string; obj: BpfObject; targets: Target[] }> = [];
    try {
      for (const { spec, constants } of objects) {
        const name = bpfObjectName(spec);
        const file = typeof spec.object === 'string' ? spec.object : fileURLToPath(spec.object);
        const targets = placements(name, spec.programs ?? {});
        const obj = openObject(name, file, this.#o.pinRoot, constants);
        loaded.push({ name, file, obj, targets });
        try {
          applyMapSizes(obj, this.#o.mapSizes ?? {});
          await obj.loadAsync();
          for (const t of targets) obj.program(t.program);
        } catch (err) {
          throw new Error(`bpf object ${name} (${file}) failed to load: ${(err as Error).message}`, { cause: err });
        }
      }
    } catch (err) {
      for (const l of loaded) l.obj.close();
      throw err;
    }
    // Every object loaded: only now does a slot change.
    const slots = this.#slots();
    const filled: SlotAssignment[] = [];
    for (const { name, obj, targets } of loaded) {
      for (const t of targets) {
        slots.set(t.index, obj.program(t.program));
        filled.push({ attach: t.attach, slot: t.slot, owner, object: name, program: t.program });
      }
    }
    const stale = this.#recordsOf(owner).filter((r) => !filled.some((f) => f.attach === r.attach && f.slot === r.slot));
    for (const r of stale) slots.clear(indexOf(r));
    this.#setRecords([...this.#records!.filter((r) => r.owner !== owner), ...filled]);
    for (const old of this.#objects.get(owner) ?? []) old.close();
    this.#objects.set(owner, loaded.map((l) => l.obj));
    this.#log.info({ owner, objects: loaded.map((l) => l.name), slots: filled.map((f) => `${f.attach}/${f.slot}`), cleared: stale.map((r) => `${r.attach}/${r.slot}`) }, 'plugin objects installed');
    const links = { dir: linkDir(this.#o.pinRoot, owner), cgroupRoot: this.#o.cgroupRoot, log: this.#log };
    return loaded.map((l) => new InstalledObject(l.name, l.file, l.obj, links));
  }

  /** Clears the slots recorded for owners not in `keep`, and detaches their cgroup links. */
  release(keep: readonly string[]): SlotAssignment[] {
    this.#releaseLinks(keep);
    const gone = this.#recordsOf(undefined).filter((r) => !keep.includes(r.owner));
    if (gone.length === 0) return [];
    const slots = this.#slots();
    for (const r of gone) slots.clear(indexOf(r));
    this.#setRecords(this.#records!.filter((r) => !gone.includes(r)));
    return gone;
  }

  /** Empties one slot (and forgets who filled it). */
  clear(attach: AttachPoint, slot: ProgramPlacement['slot']): void {
    this.#slots().clear(slotIndex(tcAttachPoint(attach, 'attach'), slot));
    this.#setRecords(this.#recordsOf(undefined).filter((r) => r.attach !== attach || r.slot !== slot));
  }

  assignments(): SlotAssignment[] {
    return [...this.#recordsOf(undefined)];
  }

  /** Closes the handles of `owner`'s objects; their programs stay in their slots. */
  closeObjects(owner: string): void {
    for (const obj of this.#objects.get(owner) ?? []) obj.close();
    this.#objects.delete(owner);
  }

  close(): void {
    for (const owner of [...this.#objects.keys()]) this.closeObjects(owner);
    this.#table?.map.close();
    this.#table = undefined;
  }

  /** Unpins (and so detaches) the cgroup links of owners not in `keep`. */
  #releaseLinks(keep: readonly string[]): void {
    const root = join(this.#o.pinRoot, LINKS_DIR);
    if (!existsSync(root)) return;
    const kept = new Set(keep.map((o) => linkDir(this.#o.pinRoot, o)));
    for (const entry of readdirSync(root)) {
      const dir = join(root, entry);
      if (kept.has(dir)) continue;
      rmSync(dir, { recursive: true, force: true });
      this.#log.info({ links: dir }, 'cgroup links of a plugin that left the config detached');
    }
  }

  /** The pinned slot table, created and pinned when no object has made it yet. */
  #slots(): ProgramArray {
    if (this.#table) return this.#table.slots;
    ensureBpffs(this.#o.pinRoot);
    const path = join(this.#o.pinRoot, MapName.tcSlots);
    let map: BpfMap<number, number>;
    try {
      map = BpfMap.openPinned(path, { key: codec.u32, value: codec.u32 });
    } catch {
      map = BpfMap.create(
        { type: MAP_TYPES.prog_array, name: MapName.tcSlots, keySize: 4, valueSize: 4, maxEntries: SLOT_TABLE_SIZE },
        { key: codec.u32, value: codec.u32 },
      );
      map.pin(path);
    }
    this.#table = { map, slots: new ProgramArray(map) };
    return this.#table.slots;
  }

  #recordsOf(owner: string | undefined): SlotAssignment[] {
    this.#records ??= readRecords(this.#file());
    return owner === undefined ? this.#records : this.#records.filter((r) => r.owner === owner);
  }

  #setRecords(records: SlotAssignment[]): void {
    this.#records = records;
    const file = this.#file();
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, `${JSON.stringify({ version: 1, slots: records }, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }

  #file(): string | undefined {
    return this.#o.stateDir ? join(this.#o.stateDir, 'datapath-slots.json') : undefined;
  }
}

/** `cilia_tc_slots` max_entries (`CILIA_TC_SLOTS_MAX`: 8 attach points × 16). */
const SLOT_TABLE_SIZE = 8 * SLOTS_PER_ATTACH_POINT;

function placements(object: string, programs: Readonly<Record<string, ProgramPlacement>>): Target[] {
  return Object.entries(programs).map(([program, { attach, slot }]) => {
    const field = `bpf object ${object}: programs.${program}`;
    const base = BASE_SLOTS.get(`${attach}/${slot}`);
    if (base) throw new Error(`${field}: ${attach}/${slot} is filled by the datapath itself (${base})`);
    return { program, attach, slot, index: slotIndex(tcAttachPoint(attach, `${field}.attach`), slot) };
  });
}

function tcAttachPoint(attach: AttachPoint, field: string): TcAttachPoint {
  if (attach === 'from-container' || attach === 'to-container' || attach === 'from-netdev' || attach === 'to-netdev') return attach;
  throw new TypeError(`${field}: "${attach}" has no tc slots`);
}

function indexOf(r: SlotAssignment): number {
  return slotIndex(tcAttachPoint(r.attach, 'attach'), r.slot);
}

function openObject(name: string, file: string, pinRoot: string, constants: ObjectInstall['constants']): BpfObject {
  try {
    return BpfObject.open(file, { pinRoot, constants });
  } catch (err) {
    throw new Error(`bpf object ${name}: cannot open ${file} (is its package built?): ${(err as Error).message}`, { cause: err });
  }
}

function readRecords(file: string | undefined): SlotAssignment[] {
  if (!file) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const parsed = JSON.parse(text) as { slots?: SlotAssignment[] };
  return Array.isArray(parsed.slots) ? parsed.slots : [];
}

/** Where plugins' cgroup links are pinned: `<pinRoot>/links/<owner>/`. */
const LINKS_DIR = 'links';

function linkDir(pinRoot: string, owner: string): string {
  return join(pinRoot, LINKS_DIR, owner.replace(/[^A-Za-z0-9_-]/g, '_'));
}

/** A plugin's loaded object, as `context.bpf.object()` hands it out. */
class InstalledObject implements LoadedBpfObject {
  constructor(
    readonly name: string,
    readonly file: string,
    readonly obj: BpfObject,
    readonly links: { readonly dir: string; readonly cgroupRoot: string | undefined; readonly log: Logger },
  ) {}

  attachCgroup(program: string, target: CgroupTarget): void {
    const { cgroup, pin, prefix } = this.#link(program, target);
    mkdirSync(this.links.dir, { recursive: true });
    // A link pinned for another cgroup (the root changed in the config) goes first.
    for (const other of readdirSync(this.links.dir)) if (other.startsWith(prefix) && join(this.links.dir, other) !== pin) unlinkSync(join(this.links.dir, other));
    const attached = attachCgroup(this.obj.program(program), { cgroup, hook: target.hook, pin });
    this.links.log.info({ object: this.name, program, hook: target.hook, cgroup, replaced: attached.replaced }, 'cgroup socket hook attached');
    attached.close(); // the pin holds it
  }

  detachCgroup(program: string, target: CgroupTarget): boolean {
    const { prefix } = this.#link(program, target);
    if (!existsSync(this.links.dir)) return false;
    const pins = readdirSync(this.links.dir).filter((p) => p.startsWith(prefix));
    for (const p of pins) unlinkSync(join(this.links.dir, p));
    return pins.length > 0;
  }

  #link(program: string, target: CgroupTarget): { cgroup: string; pin: string; prefix: string } {
    const cgroup = target.cgroup ?? this.links.cgroupRoot;
    if (!cgroup) throw new Error(`bpf object ${this.name}: attachCgroup(${program}): no cgroup given and no agent.cgroupRoot`);
    // bpffs refuses names with a dot.
    const prefix = `${this.name}-${program}-${target.hook}-`;
    return { cgroup, prefix, pin: join(this.links.dir, `${prefix}${createHash('sha256').update(cgroup).digest('hex').slice(0, 12)}`) };
  }

  programId(program: string): number {
    return this.obj.program(program).id;
  }

  attachTc(program: string, target: { readonly ifindex: number; readonly direction: 'ingress' | 'egress' }): void {
    attachTc(this.obj.program(program), { interface: target.ifindex, direction: target.direction });
  }

  map(name: string): BpfMapView {
    const info = this.obj.mapDescription(name);
    return new MapView(isPerCpuType(info.type) ? { perCpu: this.obj.perCpuMap(name) } : { plain: this.obj.map(name) });
  }
}

class MapView implements BpfMapView {
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly perCpu: boolean;
  readonly #plain?: BpfMap<Buffer, Buffer>;
  readonly #perCpu?: PerCpuMap<Buffer, Buffer>;

  constructor(map: { plain: BpfMap<Buffer, Buffer> } | { perCpu: PerCpuMap<Buffer, Buffer> }) {
    const any = 'plain' in map ? map.plain : map.perCpu;
    ({ name: this.name, keySize: this.keySize, valueSize: this.valueSize, maxEntries: this.maxEntries } = any.info);
    if ('plain' in map) this.#plain = map.plain;
    else this.#perCpu = map.perCpu;
    this.perCpu = this.#perCpu !== undefined;
  }

  lookup(key: Uint8Array): Uint8Array | undefined {
    return this.#need('plain', 'lookupPerCpu').lookup(Buffer.from(key));
  }

  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    return this.#need('perCpu', 'lookup').lookup(Buffer.from(key));
  }

  update(key: Uint8Array, value: Uint8Array): void {
    this.#need('plain', 'the datapath to write it').update(Buffer.from(key), Buffer.from(value));
  }

  delete(key: Uint8Array): boolean {
    return (this.#plain ?? this.#perCpu)!.delete(Buffer.from(key));
  }

  keys(): Uint8Array[] {
    return [...(this.#plain ?? this.#perCpu)!.keys()];
  }

  #need<K extends 'plain' | 'perCpu'>(kind: K, instead: string): K extends 'plain' ? BpfMap<Buffer, Buffer> : PerCpuMap<Buffer, Buffer> {
    const map = kind === 'plain' ? this.#plain : this.#perCpu;
    if (!map) throw new TypeError(`map ${this.name} is ${kind === 'plain' ? '' : 'not '}per-CPU: use ${instead}`);
    return map as never;
  }
}
