import { codec, type BpfMap, type BpfObject } from '@cilia/bpf';

// Mirrors of bpf/include/cilia/maps.h used by the loader.
const EndpointKey = codec.struct('cilia_endpoint_key', { addr: codec.bytes(16), family: codec.u8, pad: codec.pad(3) });
const EndpointInfo = codec.struct('cilia_endpoint_info', {
  ifindex: codec.u32,
  host_ifindex: codec.u32,
  identity: codec.u32,
  endpoint_id: codec.u16,
  flags: codec.u16,
  mac: codec.bytes(6),
  host_mac: codec.bytes(6),
});
const IpcacheKey = codec.struct('cilia_ipcache_key', { prefixlen: codec.u32, family: codec.u8, pad: codec.pad(3), addr: codec.bytes(16) });
const IpcacheValue = codec.struct('cilia_ipcache_value', { identity: codec.u32, tunnel_endpoint: codec.be32, flags: codec.u16, pad: codec.pad(2) });

export type EndpointKeyValue = ReturnType<typeof EndpointKey.decode>;
export type EndpointInfoValue = ReturnType<typeof EndpointInfo.decode>;
export type IpcacheKeyValue = ReturnType<typeof IpcacheKey.decode>;
export type IpcacheValueValue = ReturnType<typeof IpcacheValue.decode>;

/** The maps the endpoint manager writes, opened through a loaded base object. */
export class EndpointMaps {
  readonly endpoints: BpfMap<EndpointKeyValue, EndpointInfoValue>;
  readonly ipcache: BpfMap<IpcacheKeyValue, IpcacheValueValue>;

  constructor(obj: BpfObject) {
    this.endpoints = obj.map('cilia_endpoints', { key: EndpointKey, value: EndpointInfo });
    this.ipcache = obj.map('cilia_ipcache', { key: IpcacheKey, value: IpcacheValue });
  }
}
