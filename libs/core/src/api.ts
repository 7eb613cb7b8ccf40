import type { PluginStatus } from './host.js';
import type { BpfFeatures } from './services/datapath.js';

/** Overall health: `ok` when every plugin started, `degraded` when something needs attention. */
export type Health = 'ok' | 'degraded' | 'starting' | 'stopping' | 'failed';

/** Body of `GET /v1/status` on the agent's API socket. */
export interface AgentStatus {
  /** The agent's version. */
  readonly version: string;
  /** Plugin API version (`@cilia/core`). */
  readonly apiVersion: string;
  readonly node: string;
  /** Seconds since the agent process started. */
  readonly uptimeSeconds: number;
  readonly startedAt: string;
  readonly health: Health;
  /** Why health is not `ok`, one line each. */
  readonly problems: readonly string[];
  readonly plugins: readonly PluginStatus[];
  /** Kernel BPF features, once the datapath library has probed them. */
  readonly bpf?: BpfFeatures;
}

/** Body of every non-2xx API response. */
export interface ApiError {
  readonly error: string;
  /** Field path, when the request itself was at fault. */
  readonly path?: string;
}
