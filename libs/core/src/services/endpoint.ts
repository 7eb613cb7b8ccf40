import type { IpAddress, Labels, Unsubscribe } from '../net.js';
import type { NumericIdentity } from './identity.js';
import type { NamedPort, PolicyRevision } from './policy.js';

/** Life stages of an endpoint. */
export type EndpointState =
  | 'waiting-for-identity'
  | 'regenerating'
  | 'ready'
  | 'not-ready'
  | 'disconnecting';

/** A pod (or other workload) attached to the datapath. JSON names are API. */
export interface Endpoint {
  readonly id: number;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly ipv4?: IpAddress;
  readonly ipv6?: IpAddress;
  /** Path of the workload's network namespace. */
  readonly netns: string;
  /** Host-side veth name. */
  readonly hostInterface: string;
  /** MAC of the host-side veth (the pod's gateway resolves to it). */
  readonly hostMac: string;
  /** Interface name inside the netns, e.g. `eth0`. */
  readonly interfaceName: string;
  /** MAC of the pod-side interface. */
  readonly mac: string;
  /** Gateway the pod's default route points at (IPv4). */
  readonly ipv4Gateway?: IpAddress;
  /** The container runtime's id, when created through CNI. */
  readonly containerId?: string;
  readonly identity: NumericIdentity;
  readonly state: EndpointState;
  /** The policy revision this endpoint's datapath has realized. */
  readonly policyRevision: PolicyRevision;
  /** Named container ports (Kubernetes `containers[].ports[].name`), for policy. */
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

/** What creating an endpoint needs. */
export interface EndpointCreateRequest {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  /** Existing netns path (from CNI), or omitted to have the agent create one. */
  readonly netns?: string;
  /** Interface name inside the netns; default `eth0`. */
  readonly interfaceName?: string;
  /** Container id, for CNI's idempotence and GC. */
  readonly containerId?: string;
  /** Named container ports, for policy rules that name a port. */
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

/** Creates, updates and deletes endpoints, and keeps their datapath state current. */
export interface EndpointManager {
  create(request: EndpointCreateRequest): Promise<Endpoint>;
  updateLabels(id: number, labels: Labels): Promise<Endpoint>;
  delete(id: number): Promise<boolean>;
  get(id: number): Endpoint | undefined;
  /** The endpoint a CNI attachment created, by container id and interface name. */
  findByContainer(containerId: string, interfaceName?: string): Endpoint | undefined;
  list(): readonly Endpoint[];
  subscribe(listener: (event: { type: 'upsert' | 'delete'; endpoint: Endpoint }) => void): Unsubscribe;
}
