// Test support: this plugin's object built from source and loaded against the base objects'
// pinned maps, with the constants the plugin sets (the device ifindex is a stand-in).
import type { BpfObject } from '@cilia/bpf';
import { compileBpf } from '@cilia/bpf/testing';
import type { Datapath } from '@cilia/datapath/testing';
import { ipv4NetworkOrderU32 } from './address.js';

export function loadVxlanObject(dp: Datapath, localNode: string, port: number): BpfObject {
  return dp.load(compileBpf('vxlan', { srcDir: new URL('../bpf/', import.meta.url) }), {
    VXLAN_IFINDEX: 1,
    VXLAN_PORT: port,
    LOCAL_TUNNEL_ENDPOINT: ipv4NetworkOrderU32(localNode),
  });
}
