/**
 * The agent's own, instance-specific settings: everything that must differ between two
 * agents running on one machine (the multi-node lab runs one per network namespace).
 */
export interface AgentConfig {
  /** This node's name; defaults to the host name. */
  readonly nodeName: string;
  /** Where endpoints, IPAM leases and local identities persist across restarts. */
  readonly stateDir: string;
  /** bpffs directory under which this agent pins its maps and programs. */
  readonly bpfRoot: string;
  /** Unix socket of the agent's HTTP API. */
  readonly apiSocket: string;
  /** `host:port` of the Prometheus endpoint, or `""` to disable it. */
  readonly metricsAddress: string;
  /** cgroup v2 mount whose root the socket-level hooks attach to. */
  readonly cgroupRoot: string;
  /** Minimum log level. */
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** Upper bound, in milliseconds, for stopping every plugin on shutdown. */
  readonly shutdownTimeoutMs: number;
}
