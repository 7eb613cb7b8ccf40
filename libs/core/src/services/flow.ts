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
  /** The endpoint's id, when the address is an endpoint of the node that saw the packet. */
  readonly id?: number;
}

/** TCP header flags a flow's packet carried. */
export interface TcpFlags {
  readonly FIN?: boolean;
  readonly SYN?: boolean;
  readonly RST?: boolean;
  readonly PSH?: boolean;
  readonly ACK?: boolean;
  readonly URG?: boolean;
  readonly ECE?: boolean;
  readonly CWR?: boolean;
}

/** The L4 header of a flow's packet, one member set, as Hubble's `Layer4`. */
export interface FlowL4 {
  readonly tcp?: { readonly sourcePort: number; readonly destinationPort: number; readonly flags?: TcpFlags };
  readonly udp?: { readonly sourcePort: number; readonly destinationPort: number };
  readonly sctp?: { readonly sourcePort: number; readonly destinationPort: number };
  readonly icmpv4?: { readonly type: number; readonly code: number };
  readonly icmpv6?: { readonly type: number; readonly code: number };
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
  /** Unique id of this flow. */
  readonly uuid?: string;
  /** Cilium's drop reason number when dropped (e.g. 133), as Hubble's `drop_reason_desc`. */
  readonly dropReasonCode?: number;
  /** Cilium's drop reason text when dropped, e.g. `Policy denied`. */
  readonly dropReasonText?: string;
  /** The L4 header: ports, TCP flags, ICMP type and code. */
  readonly l4?: FlowL4;
  /** Where a trace event was observed, as Hubble names it (`TO_ENDPOINT`, `TO_STACK`, …). */
  readonly traceObservationPoint?: string;
  /** The device the packet was seen on. */
  readonly interface?: { readonly index: number; readonly name?: string };
  /** How a policy verdict was reached (Cilium's numbers: 0 none, 1 L3 only, 2 L3+L4, 3 L4 only, 4 all). */
  readonly policyMatchType?: number;
  /** Bytes of the packet, when known. */
  readonly length?: number;
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
  readonly until?: Date;
  readonly sourceIdentity?: readonly number[];
  readonly destinationIdentity?: readonly number[];
  /** Either side in one of these namespaces. */
  readonly namespace?: readonly string[];
  readonly eventType?: readonly Flow['eventType'][];
  /** Either side is one of these local endpoints. */
  readonly endpoint?: readonly number[];
}

/** Flows from the datapath ring buffer and the L7 proxy, kept in a bounded ring. */
export interface FlowSource {
  /** The most recent flows matching `filter`, newest last. */
  recent(limit: number, filter?: FlowFilter): readonly Flow[];
  /** Flows as they arrive. */
  follow(filter: FlowFilter, listener: (flow: Flow) => void): Unsubscribe;
}
