import type { PluginContext } from '../plugin.js';

/**
 * Attach points of the base programs. Each runs a base program that tail-calls slots.
 * Names are ABI shared with `bpf/include/cilia/`.
 */
export type AttachPoint =
  | 'from-container'
  | 'to-container'
  | 'from-host'
  | 'to-host'
  | 'from-netdev'
  | 'to-netdev'
  | 'xdp-netdev'
  | 'cgroup-sock';

/** Tail-call slots a plugin's program may fill; an empty slot falls through to the default. */
export type DatapathSlot = 'service' | 'policy' | 'l7-redirect' | 'shaping' | 'forward';

/**
 * Where a plugin's program goes: a stage (`slot`) of an attach point's pipeline, or `pre`, the
 * hook in front of the base entry program (from-netdev only) that sees each packet before the
 * base parses it — where a tunnel's receive program goes.
 */
export interface ProgramPlacement {
  readonly attach: AttachPoint;
  readonly slot: DatapathSlot | 'pre';
}

/** The attach points whose base programs run slots today, and the slots each offers. */
export const SLOTTED_ATTACH_POINTS: Readonly<Partial<Record<AttachPoint, readonly ProgramPlacement['slot'][]>>> = {
  'from-container': ['service', 'policy', 'l7-redirect', 'shaping', 'forward'],
  'to-container': ['service', 'policy', 'l7-redirect', 'shaping', 'forward'],
  'from-netdev': ['pre', 'service', 'policy', 'l7-redirect', 'shaping', 'forward'],
  'to-netdev': ['service', 'policy', 'l7-redirect', 'shaping', 'forward'],
};

/** Values of an object's load-time constants (`const volatile` globals), by name. */
export type BpfConstants = Readonly<Record<string, number | bigint | boolean>>;

/**
 * A plugin's compiled BPF object, as it declares it in `bpf:`. The agent, not the plugin, loads
 * it (with the agent's pin root, so it shares every pinned map) and installs its programs into
 * their slots: after `register`, just before the plugin's `start`, each slot an atomic swap, so
 * a restarted agent replaces the programs under live traffic. When the plugin leaves the config,
 * the slots it filled are cleared at the next start.
 */
export interface BpfObjectSpec<C = unknown> {
  /**
   * The plugin's name for it, for `context.bpf.object(name)`; default the file's name without
   * `.o` (`new URL('../dist/bpf/vxlan.o', …)` → `vxlan`).
   */
  readonly name?: string;
  /** Absolute path or file URL of the `.o` (usually `new URL('../dist/bpf/x.o', import.meta.url)`). */
  readonly object: string | URL;
  /**
   * Program name in the object → where it goes. Installed in the order listed: put what receives
   * first and a forward stage last, so that by the time packets are sent the other side is ready.
   */
  readonly programs?: Readonly<Record<string, ProgramPlacement>>;
  /**
   * The object's load-time constants, computed when it is installed: from the plugin's config
   * and what it resolves (this node's addresses through `Tokens.LocalNode`, say). It may do I/O
   * (a device the program must know the ifindex of can be made here). A constant the object does
   * not declare is refused, naming it.
   */
  readonly constants?: (context: PluginContext<C>) => BpfConstants | Promise<BpfConstants>;
  /**
   * Whether to install it at all, decided just before the plugin starts (from its config and what
   * the kernel offers; it may do I/O, and may throw a `ConfigError` to refuse the config). An
   * object left out fills no slot, and the slots it filled before are cleared. Default: installed.
   */
  readonly enabled?: (context: PluginContext<C>) => boolean | Promise<boolean>;
}

/** cgroup v2 socket hooks a `cgroup/sock_addr` program (`SEC("cgroup/connect4")`, …) attaches to. */
export type CgroupHook = 'connect4' | 'connect6' | 'sendmsg4' | 'sendmsg6' | 'recvmsg4' | 'recvmsg6' | 'getpeername4' | 'getpeername6';

/** Where {@link LoadedBpfObject.attachCgroup} attaches a program. */
export interface CgroupTarget {
  readonly hook: CgroupHook;
  /** A cgroup v2 directory; default the agent's `agent.cgroupRoot`. */
  readonly cgroup?: string;
}

/** Raw access to one map of a loaded object: keys and values as the C structs' bytes. */
export interface BpfMapView {
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** Whether each CPU has its own value (`lookupPerCpu`). */
  readonly perCpu: boolean;
  lookup(key: Uint8Array): Uint8Array | undefined;
  /** A per-CPU map's value on every possible CPU. */
  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined;
  update(key: Uint8Array, value: Uint8Array): void;
  delete(key: Uint8Array): boolean;
  keys(): Uint8Array[];
}

/** A plugin's object as the agent loaded and installed it; `context.bpf.object(name)` returns it. */
export interface LoadedBpfObject {
  /** The name the plugin gave it (see {@link BpfObjectSpec.name}). */
  readonly name: string;
  /** The `.o` file it was loaded from. */
  readonly file: string;
  /** The kernel's id of one of its programs. */
  programId(program: string): number;
  /**
   * Attaches one of its programs to a device's tc hook — a device of the plugin's own (a tunnel
   * device, say); the datapath's slots are the agent's to fill. The same place again replaces
   * it atomically.
   */
  attachTc(program: string, target: { readonly ifindex: number; readonly direction: 'ingress' | 'egress' }): void;
  /** One of its maps (its own, or a pinned one it shares). */
  map(name: string): BpfMapView;
  /**
   * Attaches one of its programs to a cgroup v2 socket hook (socket-level load balancing, say)
   * through a bpf_link pinned under the agent's pin root: it stays attached while the agent is
   * away, attaching again (a restart) replaces the program in place, and the datapath detaches it
   * once the plugin leaves the config. Optional: datapaths older than this interface lack it.
   */
  attachCgroup?(program: string, target: CgroupTarget): void;
  /** Detaches what `attachCgroup` attached for `program` at `target`; false when nothing was. */
  detachCgroup?(program: string, target: CgroupTarget): boolean;
}

/** Which plugin's program fills a slot. */
export interface SlotAssignment {
  readonly attach: AttachPoint;
  readonly slot: ProgramPlacement['slot'];
  readonly owner: string;
  readonly object: string;
  readonly program: string;
}

/** What the kernel offers that the datapath cares about. */
export interface BpfFeatures {
  readonly kernel: string;
  readonly bpffs: { readonly mounted: boolean; readonly path: string };
  readonly btf: boolean;
  readonly jit: boolean;
  /** Map type and helper names this kernel supports, e.g. `ringbuf`, `lpm_trie`, `bpf_sk_assign`. */
  readonly supported: readonly string[];
  readonly missing: readonly string[];
}

/** One object to install, its constants computed. */
export interface ObjectInstall {
  readonly spec: BpfObjectSpec<never>;
  readonly constants: BpfConstants;
}

/** Loads programs and maps, fills slots, attaches to hooks. */
export interface Datapath {
  /** bpffs directory holding this agent's pins. */
  readonly pinRoot: string;
  features(): Promise<BpfFeatures>;
  /**
   * Loads a plugin's objects and installs their programs into their slots, each an atomic swap,
   * recording `owner` (the plugin's name) as each slot's filler. Every object loads before any
   * slot changes: a refused one changes nothing. Slots recorded for `owner` that these objects
   * no longer fill are cleared.
   */
  installObjects(owner: string, objects: readonly ObjectInstall[]): Promise<LoadedBpfObject[]>;
  /** Clears every slot recorded for an owner not in `owners` (plugins that left the config); returns those. */
  releaseSlots(owners: readonly string[]): Promise<SlotAssignment[]>;
  /** The slots plugins fill now. */
  slots(): SlotAssignment[];
  /** Empties a slot so it falls through to the base default again. */
  clearSlot(attach: AttachPoint, slot: ProgramPlacement['slot']): Promise<void>;
  /** Closes the handles of objects installed for `owner`; their programs stay in their slots. */
  closeObjects(owner: string): void;
}
