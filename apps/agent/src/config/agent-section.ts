import { z } from '@cilia/core';

/**
 * The agent's own section (`agent:`): everything instance-specific, so that several agents can
 * run on one machine (the multi-node lab runs one per network namespace).
 */
export const agentSection = z.strictObject({
  nodeName: z.string().default('').describe("This node's name. Empty: the host name."),
  stateDir: z
    .string()
    .min(1)
    .default('/var/run/cilia')
    .describe('Directory holding endpoints, IPAM leases and local identities across restarts.'),
  bpfRoot: z
    .string()
    .min(1)
    .default('/sys/fs/bpf/cilia')
    .describe('bpffs directory under which maps and programs are pinned. bpffs is mounted at its mount point if missing.'),
  apiSocket: z
    .string()
    .min(1)
    .default('/var/run/cilia/cilia.sock')
    .describe('Unix socket of the agent API (mode 0660). `cilia --socket` and CILIA_SOCKET point the CLI at it.'),
  apiSocketGroup: z
    .string()
    .regex(/^$|^[a-z_][a-z0-9_-]*\$?$|^\d+$/, 'expected a group name, a numeric gid, or "" for the agent\'s own group')
    .default('')
    .describe("Group owning the API socket, whose members may use the CLI without root (a name from /etc/group or a gid). Empty: the agent's own group."),
  metricsAddress: z
    .string()
    .regex(/^$|^[^\s:]*:\d{1,5}$/, 'expected host:port, :port, or "" to disable')
    .default('127.0.0.1:9962')
    .describe('host:port serving Prometheus metrics at /metrics and the health probe at /healthz (200 when health is ok, 503 otherwise). Empty: disabled.'),
  cgroupRoot: z
    .string()
    .default('')
    .describe('cgroup v2 mount the socket-level hooks attach to. Empty: the first cgroup2 mount in /proc/mounts.'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Minimum log level.'),
  logFile: z.string().default('').describe('Write JSON logs to this file instead of standard output. Empty: standard output.'),
  shutdownTimeoutMs: z
    .number()
    .int()
    .positive()
    .max(300_000)
    .default(10_000)
    .describe('Upper bound, in milliseconds, for stopping every plugin on SIGTERM/SIGINT.'),
});

/** The agent section as validated. */
export type AgentSection = z.output<typeof agentSection>;
