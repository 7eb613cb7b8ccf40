import type { Direction, IpAddress, Labels, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';

/** Verdicts, as Hubble names them. */
export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED';

/** One side of a flow, enriched from the identity allocator and endpoint manager. */
export interface FlowPeer {
  readonly ip: IpAddress;
  readonly port?: number;
  readonly identity: NumericIdentity;
  readonly labels: Labels;
  readonly namespace?: string;
  readonly podName?: string;
}

/** A datapath or proxy event turned into a flow. */
export interface Flow {
  readonly time: Date;
  readonly node: string;
  readonly verdict: FlowVerdict;
  /** Drop reason name when dropped, e.g. `POLICY_DENIED`. */
  readonly dropReason?: string;
  readonly eventType: 'drop' | 'trace' | 'policy-verdict' | 'l7';
  readonly direction?: Direction;
  readonly isReply?: boolean;
  readonly protocol: string;
  readonly source: FlowPeer;
  readonly destination: FlowPeer;
  /** L7 fields (HTTP method, path, status, …) for `l7` events. */
  readonly l7?: Readonly<Record<string, unknown>>;
}

/** Selects flows; every set field must match. */
export interface FlowFilter {
  readonly verdict?: readonly FlowVerdict[];
  readonly sourcePod?: string;
  readonly destinationPod?: string;
  readonly sourceIp?: readonly IpAddress[];
  readonly destinationIp?: readonly IpAddress[];
  readonly protocol?: readonly string[];
  readonly port?: readonly number[];
  readonly since?: Date;
}

/** Flows from the datapath ring buffer and the L7 proxy, kept in a bounded ring. */
export interface FlowSource {
  /** The most recent flows matching `filter`, newest last. */
  recent(limit: number, filter?: FlowFilter): readonly Flow[];
  /** Flows as they arrive. */
  follow(filter: FlowFilter, listener: (flow: Flow) => void): Unsubscribe;
}
