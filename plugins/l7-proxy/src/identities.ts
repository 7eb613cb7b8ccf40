import { join } from 'node:path';
import { BpfMap } from '@cilia/bpf';
import { datapathMaps } from '@cilia/datapath';

/** A local endpoint as the datapath knows it. */
export interface LocalEndpoint {
  readonly endpointId: number;
  readonly identity: number;
}

/** Who an address is: what the proxy asks of every connection it accepts. */
export interface IdentityLookup {
  /** The local endpoint with this address, if any. */
  endpoint(ip: string): LocalEndpoint | undefined;
  /** The security identity of an address: its endpoint's, else the ipcache's (longest prefix), else world (2). */
  identity(ip: string): number;
}

const WORLD = 2;

/**
 * Identities from the datapath's pinned maps (`cilia_endpoints`, `cilia_ipcache`): what the
 * datapath itself decides with, readable from any process on the node — the agent's or the
 * proxy's own — and unaffected by the agent being away.
 */
export class PinnedIdentities implements IdentityLookup {
  #endpoints: BpfMap<string, ReturnType<typeof datapathMaps.EndpointInfo.decode>> | undefined;
  #ipcache: BpfMap<string, ReturnType<typeof datapathMaps.IpcacheValue.decode>> | undefined;

  constructor(private readonly bpfRoot: string) {}

  endpoint(ip: string): LocalEndpoint | undefined {
    this.#endpoints ??= BpfMap.openPinned(join(this.bpfRoot, datapathMaps.MapName.endpoints), { key: datapathMaps.EndpointKey, value: datapathMaps.EndpointInfo });
    const info = this.#endpoints.lookup(ip);
    return info && !(info.flags & datapathMaps.ENDPOINT_F_HOST) ? { endpointId: info.endpointId, identity: info.identity } : undefined;
  }

  identity(ip: string): number {
    const ep = this.endpoint(ip);
    if (ep) return ep.identity;
    this.#ipcache ??= BpfMap.openPinned(join(this.bpfRoot, datapathMaps.MapName.ipcache), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
    return this.#ipcache.lookup(`${ip}/32`)?.identity ?? WORLD;
  }

  close(): void {
    this.#endpoints?.close();
    this.#ipcache?.close();
    this.#endpoints = this.#ipcache = undefined;
  }
}
