// cilia_endpoints: local endpoint address → endpoint (bpf/include/cilia/maps.h).
import { codec, type Codec } from '@cilia/bpf';
import { decodeAddress, encodeAddress, mac } from './addr.js';

/** `struct cilia_endpoint_key`, field by field (for the layout check). */
export const EndpointKeyLayout = codec.struct('cilia_endpoint_key', {
  addr: codec.bytes(16),
  family: codec.u8,
  pad: codec.pad(3),
});

/** `struct cilia_endpoint_key` as the endpoint's IP address (IPv4 or IPv6 string). */
export const EndpointKey: Codec<string> = {
  size: EndpointKeyLayout.size,
  align: EndpointKeyLayout.align,
  encode(ip, b, o) {
    b.fill(0, o, o + 20);
    b[o + 16] = encodeAddress(ip, b, o, 'cilia_endpoint_key.addr');
  },
  decode: (b, o) => decodeAddress(b, o, b[o + 16] ?? 0),
};

/** `cilia_endpoint_info.flags`: the entry stands for the node itself. */
export const ENDPOINT_F_HOST = 1;

/** `struct cilia_endpoint_info`. */
export const EndpointInfo = codec.struct('cilia_endpoint_info', {
  /** The pod-side interface's ifindex (inside the pod's netns). */
  ifindex: codec.u32,
  /** The host-side veth: the redirect target and the anti-spoofing check. */
  hostIfindex: codec.u32,
  identity: codec.u32,
  endpointId: codec.u16,
  flags: codec.u16,
  /** The pod interface's MAC. */
  mac,
  /** The host-side veth's MAC (the pod's gateway MAC). */
  hostMac: mac,
});

export type EndpointInfoValue = ReturnType<typeof EndpointInfo.decode>;
