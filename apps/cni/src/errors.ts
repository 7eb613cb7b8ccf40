/**
 * CNI error codes. 1–99 are the specification's well-known codes; 100 and up are Cilia's own.
 */
export const ErrorCode = {
  /** The network config's `cniVersion` is not one this plugin speaks (for that operation). */
  IncompatibleVersion: 1,
  /** A field in the network config this plugin cannot honour. */
  UnsupportedField: 2,
  /** A required `CNI_*` environment variable is missing or malformed; the message names it. */
  InvalidEnvironment: 4,
  /** Reading the network config from stdin failed. */
  IoFailure: 5,
  /** stdin is not JSON. */
  DecodeFailure: 6,
  /** The network config failed validation; the message names the field. */
  InvalidNetworkConfig: 7,
  /** A transient condition (e.g. the agent is starting); the runtime should retry. */
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD requests. */
  PluginNotAvailable: 50,
  /** STATUS: not available, and existing containers may have limited connectivity. */
  PluginNotAvailableLimitedConnectivity: 51,
  /** Nothing answers on the agent's API socket. */
  AgentUnreachable: 100,
  /** The agent answered with an error this plugin has no better code for. */
  AgentError: 101,
  /** The agent has no pod IP address left to give. */
  AddressesExhausted: 102,
  /** CHECK found the attachment missing or different from `prevResult`. */
  CheckFailed: 103,
  /** ADD for an attachment the agent already holds in a different network namespace. */
  AttachmentConflict: 104,
  /** A bug in this plugin (an unexpected exception). */
  Internal: 199,
} as const;

/** One of {@link ErrorCode}'s values. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A failure reported to the runtime as the specification's error JSON on stdout. */
export class CniError extends Error {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = 'CniError';
  }
}

/** The error object printed on stdout (the specification's shape). */
export interface CniErrorJson {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

/** Renders `err` in the specification's error shape; non-CNI errors become {@link ErrorCode.Internal}. */
export function toErrorJson(err: unknown, cniVersion: string): CniErrorJson {
  if (err instanceof CniError) {
    return { cniVersion, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { cniVersion, code: ErrorCode.Internal, msg: `internal error: ${e.message}`, ...(e.stack ? { details: e.stack } : {}) };
}
