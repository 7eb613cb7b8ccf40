/** Address family. IPv4 comes first in the datapath, but every API is typed for both. */
export type IpFamily = 'ipv4' | 'ipv6';

/** An IP address in its canonical text form, e.g. `"10.0.1.7"` or `"fd00::7"`. */
export type IpAddress = string;

/** A prefix in CIDR notation, e.g. `"10.0.1.0/24"` or `"fd00::/64"`. */
export type Cidr = string;

/** L4 protocols the datapath knows by name. `ANY` matches every protocol. */
export type L4Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6' | 'ANY';

/** Undo a subscription. */
export type Unsubscribe = () => void;

/** Labels in Cilium's form: key `source:name` (e.g. `k8s:app`), value the label value. */
export type Labels = Readonly<Record<string, string>>;

/** Traffic direction relative to an endpoint. */
export type Direction = 'ingress' | 'egress';
