import type { Direction, IpAddress, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/** L7 rules for one endpoint, port and direction, in the protocol's own shape. */
export interface L7RuleSet {
  readonly endpointId: number;
  readonly direction: Direction;
  readonly port: number;
  /** `http`, `grpc`, `kafka`, … — one of the registered parsers. */
  readonly parser: string;
  readonly rules: readonly unknown[];
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

/** Parses one L7 protocol; an extension point of the L7 proxy. */
export interface L7Parser {
  readonly name: string;
  /** Validates rules of this protocol; throws an error naming the field. */
  validate(rules: readonly unknown[]): void;
}

/** The L7 proxy: ports the datapath redirects to, rules, access logs. */
export interface L7Proxy {
  /** Installs or replaces the rules of one endpoint/port/direction; returns the proxy port. */
  upsertRules(rules: L7RuleSet): Promise<number>;
  removeRules(endpointId: number, direction: Direction, port: number): Promise<void>;
  onAccessLog(listener: (record: L7AccessLogRecord) => void): Unsubscribe;
}
