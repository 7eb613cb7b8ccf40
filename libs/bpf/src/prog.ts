import { readFileSync } from 'node:fs';
import { wrap } from './errors.js';
import { native } from './native.js';

/** Names of `enum bpf_prog_type` values, as bpftool prints them. */
const PROG_TYPES: readonly string[] = [
  'unspec', 'socket_filter', 'kprobe', 'sched_cls', 'sched_act', 'tracepoint', 'xdp', 'perf_event', 'cgroup_skb',
  'cgroup_sock', 'lwt_in', 'lwt_out', 'lwt_xmit', 'sock_ops', 'sk_skb', 'cgroup_device', 'sk_msg', 'raw_tracepoint',
  'cgroup_sock_addr', 'lwt_seg6local', 'lirc_mode2', 'sk_reuseport', 'flow_dissector', 'cgroup_sysctl',
  'raw_tracepoint_writable', 'cgroup_sockopt', 'tracing', 'struct_ops', 'ext', 'lsm', 'sk_lookup', 'syscall', 'netfilter',
];

/** A program loaded in the kernel, as `bpftool prog show` describes it. */
export interface ProgramInfo {
  readonly id: number;
  /** The kernel's copy of its name (at most 15 characters). */
  readonly name: string;
  /** `sched_cls`, `cgroup_sock_addr`, … (`type <n>` for one this list does not know). */
  readonly type: string;
  readonly tag: string;
  /** Runs counted while `kernel.bpf_stats_enabled` was 1 (0 otherwise). */
  readonly runCount: number;
  /** Nanoseconds spent in it while `kernel.bpf_stats_enabled` was 1. */
  readonly runTimeNs: number;
  readonly recursionMisses: number;
  readonly jitedBytes: number;
  /** Ids of the maps it uses. */
  readonly mapIds: readonly number[];
}

/** Every program loaded in the kernel (needs CAP_SYS_ADMIN), in id order. */
export function listPrograms(): ProgramInfo[] {
  return wrap(() => native().programs()).map((p) => ({
    id: p.id,
    name: p.name,
    type: PROG_TYPES[p.type] ?? `type ${p.type}`,
    tag: p.tag,
    runCount: p.runCount,
    runTimeNs: p.runTimeNs,
    recursionMisses: p.recursionMisses,
    jitedBytes: p.jitedBytes,
    mapIds: p.mapIds,
  }));
}

/** Whether the kernel counts program runs and run time now (`kernel.bpf_stats_enabled`). */
export function bpfStatsEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
