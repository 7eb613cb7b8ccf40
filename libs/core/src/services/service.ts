import type { IpAddress, L4Protocol } from '../net.js';

/** Where a service is reached. */
export interface ServiceFrontend {
  readonly address: IpAddress;
  readonly port: number;
  readonly protocol: L4Protocol;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP' | 'HostPort';
}

/** One backend of a service. */
export interface ServiceBackend {
  readonly address: IpAddress;
  readonly port: number;
  readonly weight: number;
  /** Terminating backends keep existing connections but take no new ones. */
  readonly state: 'active' | 'terminating' | 'quarantined' | 'maintenance';
  readonly nodeName?: string;
  readonly zone?: string;
}

/** A service as the load balancer programs it. */
export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly frontend: ServiceFrontend;
  readonly backends: readonly ServiceBackend[];
  readonly externalTrafficPolicy: 'Cluster' | 'Local';
  readonly internalTrafficPolicy: 'Cluster' | 'Local';
  /** Seconds of ClientIP affinity; 0 for none. */
  readonly sessionAffinitySeconds: number;
  readonly algorithm: 'random' | 'maglev';
}

/** Services, frontends and backends → the LB maps (kube-proxy replacement). */
export interface ServiceManager {
  /** Adds or replaces a service by frontend; backends are diffed, not rewritten. */
  upsert(service: Service): Promise<void>;
  /** Removes a service by frontend; returns false if unknown. */
  delete(frontend: ServiceFrontend): Promise<boolean>;
  list(): readonly Service[];
}
