// The compiled addon and the shape of what it exports. Everything else in this package goes
// through here; the addon itself stays a thin layer over libbpf.
import { createRequire } from 'node:module';

/** Map metadata as the addon reports it. */
export interface NativeMapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  internal: boolean;
  pinPath: string | null;
  fd: number;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  type: number;
  expectedAttachType: number;
  fd: number;
}

export interface NativeProgramEntry {
  id: number;
  name: string;
  type: number;
  tag: string;
  runCount: number;
  runTimeNs: number;
  recursionMisses: number;
  loadTimeNs: number;
  jitedBytes: number;
  mapIds: number[];
}

export interface NativeGlobal {
  name: string;
  section: string;
  offset: number;
  size: number;
}

export interface NativeObject {
  programs(): NativeProgramInfo[];
  maps(): NativeMapInfo[];
  globals(): NativeGlobal[];
  setGlobal(section: string, offset: number, value: Uint8Array): void;
  setMapPinPath(map: string, path: string | null): void;
  reuseMapFd(map: string, fd: number): void;
  setMapMaxEntries(map: string, maxEntries: number): void;
  setAutoload(program: string, autoload: boolean): void;
  load(): void;
  loadAsync(): Promise<void>;
  close(): void;
}

export interface NativeTestRunSpec {
  dataIn?: Uint8Array;
  dataOut?: Uint8Array;
  ctxIn?: Uint8Array;
  ctxOut?: Uint8Array;
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface NativeTestRunResult {
  retval: number;
  duration: number;
  dataSizeOut: number;
  ctxSizeOut: number;
}

export interface NativeRingBuffer {
  start(): void;
  consume(): number;
  stats(): { records: number; batches: number; oversized: number; lastErrno: number };
  close(): void;
}

export interface NativeStructLayout {
  size: number;
  members: Array<{ name: string; offset: number; size: number; bitOffset: number; bitSize: number }>;
}

export interface NativeAddon {
  NativeObject: new (path: string, pinRoot?: string) => NativeObject;
  NativeRingBuffer: new (
    mapFd: number,
    onBatch: (batch: Buffer, bytes: number, count: number) => void,
    batchBytes?: number,
    maxPerWakeup?: number,
  ) => NativeRingBuffer;
  mapLookup(fd: number, key: Uint8Array | null, value: Uint8Array, flags?: number): boolean;
  mapLookupAndDelete(fd: number, key: Uint8Array | null, value: Uint8Array): boolean;
  mapUpdate(fd: number, key: Uint8Array | null, value: Uint8Array, flags: number): void;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): boolean;
  mapLookupBatch(
    fd: number,
    inBatch: Uint8Array | null,
    outBatch: Uint8Array,
    keys: Uint8Array,
    values: Uint8Array,
    count: number,
    andDelete: boolean,
  ): { count: number; done: boolean };
  mapUpdateBatch(fd: number, keys: Uint8Array, values: Uint8Array, count: number, flags: number): number;
  mapDeleteBatch(fd: number, keys: Uint8Array, count: number): number;
  mapInfo(fd: number): Omit<NativeMapInfo, 'internal' | 'pinPath' | 'fd'> & { id: number };
  mapCreate(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
    innerMapFd?: number,
  ): number;
  objGet(path: string): number;
  objPin(fd: number, path: string): void;
  closeFd(fd: number): void;
  numPossibleCpus(): number;
  programs(): NativeProgramEntry[];
  ifNameToIndex(name: string): number;
  tcAttach(
    ifindex: number,
    direction: string,
    progFd: number,
    handle: number,
    priority: number,
  ): { handle: number; priority: number; progId: number };
  tcQuery(ifindex: number, direction: string, handle: number, priority: number): number;
  tcDetach(ifindex: number, direction: string, handle: number, priority: number): boolean;
  xdpAttach(ifindex: number, progFd: number, mode: string, expectedProgFd?: number): number;
  xdpDetach(ifindex: number, mode: string): void;
  xdpQuery(ifindex: number): { generic: number; native: number; offload: number };
  cgroupLink(
    progFd: number,
    cgroupPath: string,
    attachType: number,
    pinPath: string | null,
  ): { linkFd: number; replaced: boolean };
  linkDetach(linkFd: number): void;
  linkProgId(linkFd: number): number;
  progId(progFd: number): number;
  testRun(progFd: number, spec: NativeTestRunSpec): NativeTestRunResult;
  testRunAsync(progFd: number, spec: NativeTestRunSpec): Promise<NativeTestRunResult>;
  btfStructLayout(objectPath: string, structName: string): NativeStructLayout | null;
  btfEnum(objectPath: string, enumName: string): Array<{ name: string; value: number }> | null;
  probeFeatures(): {
    mapTypes: Record<string, boolean>;
    progTypes: Record<string, boolean>;
    helpers: Record<string, boolean>;
  };
  mountBpffs(path: string): void;
  libbpfVersion(): string;
}

let cached: NativeAddon | undefined;

/** The addon, loaded on first use so that importing the package never fails on its own. */
export function native(): NativeAddon {
  if (cached) return cached;
  // src/ and dist/ both sit one level below the package root, beside build/.
  const require = createRequire(import.meta.url);
  try {
    cached = require('../build/Release/cilia_bpf.node') as NativeAddon;
  } catch (err) {
    throw new Error(
      `@cilia/bpf: native addon not built (${(err as Error).message}); run \`npx nx run @cilia/bpf:build-addon\``,
      { cause: err },
    );
  }
  return cached;
}
