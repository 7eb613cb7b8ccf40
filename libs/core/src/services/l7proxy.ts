import type { Direction, IpAddress, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/** The L7 rules one peer identity is allowed (0: every peer), in the protocol's own shape. */
export interface L7PeerRules {
  readonly identity: NumericIdentity;
  /** A request passes when any rule matches it; `{}` matches every request. */
  readonly rules: readonly unknown[];
}

/** L7 rules for one endpoint, port and direction. */
export interface L7RuleSet {
  readonly endpointId: number;
  readonly direction: Direction;
  readonly port: number;
  /** `http`, `kafka`, … — one of the registered parsers. */
  readonly parser: string;
  readonly rules: readonly L7PeerRules[];
}

/** One request the proxy saw and its verdict. */
export interface L7AccessLogRecord {
  readonly time: Date;
  readonly verdict: 'forwarded' | 'denied' | 'error';
  readonly parser: string;
  readonly source: { readonly ip: IpAddress; readonly port: number; readonly identity: NumericIdentity };
  readonly destination: { readonly ip: IpAddress; readonly port: number; readonly identity: NumericIdentity };
  /** Protocol-specific fields, e.g. HTTP method, path and status. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A rule field an L7 parser refuses: its path below the rules list (`[0].path`) and why. */
export interface L7RuleError {
  readonly path: string;
  readonly reason: string;
}

/** Parses one L7 protocol; an extension point of the L7 proxy. */
export interface L7Parser {
  readonly name: string;
  /** Validates rules of this protocol: every refused field, empty when valid. */
  validate(rules: readonly unknown[]): readonly L7RuleError[];
}

/** The L7 proxy: ports the datapath redirects to, rules, access logs. */
export interface L7Proxy {
  /** The port the datapath redirects `parser`'s connections of `direction` to; undefined when it has no such parser. */
  redirectPort(parser: string, direction: Direction): number | undefined;
  /** Installs or replaces the rules of one endpoint/port/direction; returns the proxy port. */
  upsertRules(rules: L7RuleSet): Promise<number>;
  removeRules(endpointId: number, direction: Direction, port: number): Promise<void>;
  onAccessLog(listener: (record: L7AccessLogRecord) => void): Unsubscribe;
}
