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

/** A plugin's compiled BPF object and the slots its programs fill. */
export interface BpfObjectSpec {
  /** Absolute path or file URL of the `.o` (usually `new URL('./bpf/x.o', import.meta.url)`). */
  readonly object: string | URL;
  /** Program name in the object → where it goes. */
  readonly programs?: Readonly<Record<string, { readonly attach: AttachPoint; readonly slot: DatapathSlot }>>;
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

/** Loads programs and maps, fills slots, attaches to hooks. */
export interface Datapath {
  /** bpffs directory holding this agent's pins. */
  readonly pinRoot: string;
  features(): Promise<BpfFeatures>;
  /** Loads an object and installs its programs into their slots (atomic replacement). */
  installObject(spec: BpfObjectSpec, constants?: Readonly<Record<string, number | bigint | boolean>>): Promise<void>;
  /** Empties a slot so it falls through to the base default again. */
  clearSlot(attach: AttachPoint, slot: DatapathSlot): Promise<void>;
}
