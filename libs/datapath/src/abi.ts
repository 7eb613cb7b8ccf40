import type { BpfMap, BpfObject } from '@cilia/bpf';
import { EndpointInfo, type EndpointInfoValue, EndpointKey } from './maps/endpoints.js';
import { type IpcacheEntry, IpcacheKey, IpcacheValue } from './maps/ipcache.js';

/** The maps the endpoint manager writes, opened through a loaded base object. */
export class EndpointMaps {
  /** Endpoint IP → endpoint info. */
  readonly endpoints: BpfMap<string, EndpointInfoValue>;
  /** CIDR → identity (LPM). */
  readonly ipcache: BpfMap<string, IpcacheEntry>;

  constructor(obj: BpfObject) {
    this.endpoints = obj.map('cilia_endpoints', { key: EndpointKey, value: EndpointInfo });
    this.ipcache = obj.map('cilia_ipcache', { key: IpcacheKey, value: IpcacheValue });
  }
}
