/**
 * @cilia/bpf: eBPF objects, maps, attachments, ring buffers and test runs over the system
 * libbpf, through a Node-API addon.
 */
export { BpfError } from './errors.js';
export { BpfObject, BpfProgram, DEFAULT_PIN_ROOT, type ConstantValue, type OpenOptions } from './object.js';
export { BpfMap, PerCpuMap, MAP_TYPES, isPerCpuType, type MapInfo, type MapSpec, type UpdateFlag } from './map.js';
export { ProgramArray } from './progarray.js';
export * as codec from './codec.js';
export type { Codec, CodecValue, StructCodec, FieldLayout } from './codec.js';
export {
  attachTc,
  detachTc,
  queryTc,
  attachXdp,
  detachXdp,
  queryXdp,
  attachCgroup,
  ifindexOf,
  CgroupAttachment,
  CGROUP_HOOKS,
  type CgroupHook,
  type CgroupAttachOptions,
  type TcAttachOptions,
  type TcAttachment,
  type TcDirection,
  type XdpAttachOptions,
  type XdpMode,
  type Interface,
} from './attach.js';
export { RingBufferConsumer, type RecordBatch, type RingBufferOptions, type RingBufferStats } from './ringbuf.js';
export { testRun, testRunAsync, type TestRunOptions, type TestRunResult } from './testrun.js';
export { ensureBpffs, isBpffs, probeFeatures, libbpfVersion } from './features.js';
export { listPrograms, bpfStatsEnabled, type ProgramInfo } from './prog.js';
export { btfEnum, btfStructLayout, compareLayout, type StructLayout } from './btf.js';
