// cilia_ipcache: prefix → identity, longest prefix match (bpf/include/cilia/maps.h).
import { codec, type Codec } from '@cilia/bpf';
import { AddressFamily, decodeAddress, encodeAddress } from './addr.js';

/** Bits of family + padding that every key matches exactly before the address prefix. */
export const IPCACHE_PREFIX_STATIC = 32;

/** `struct cilia_ipcache_key`, field by field (for the layout check). */
export const IpcacheKeyLayout = codec.struct('cilia_ipcache_key', {
  prefixlen: codec.u32,
  family: codec.u8,
  pad: codec.pad(3),
  addr: codec.bytes(16),
});

/** `struct cilia_ipcache_key` as a CIDR (`10.0.0.0/24`, `fd00::/64`; a bare address is a host route). */
export const IpcacheKey: Codec<string> = {
  size: IpcacheKeyLayout.size,
  align: IpcacheKeyLayout.align,
  encode(cidr, b, o) {
    const [ip = '', bitsText] = cidr.split('/');
    b.fill(0, o, o + 8);
    const family = encodeAddress(ip, b, o + 8, 'cilia_ipcache_key.addr');
    const max = family === AddressFamily.ipv4 ? 32 : 128;
    const bits = bitsText === undefined ? max : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > max) {
      throw new RangeError(`cilia_ipcache_key.prefixlen: '${cidr}' has no valid prefix length (0..${max})`);
    }
    b.writeUInt32LE(IPCACHE_PREFIX_STATIC + bits, o);
    b[o + 4] = family;
  },
  decode(b, o) {
    const family = b[o + 4] ?? 0;
    return `${decodeAddress(b, o + 8, family)}/${b.readUInt32LE(o) - IPCACHE_PREFIX_STATIC}`;
  },
};

/** `struct cilia_ipcache_value`. */
export const IpcacheValue = codec.struct('cilia_ipcache_value', {
  identity: codec.u32,
  /** Node address for overlay (0.0.0.0 = none). */
  tunnelEndpoint: codec.ipv4,
  flags: codec.u16,
  pad: codec.pad(2),
});

export type IpcacheEntry = ReturnType<typeof IpcacheValue.decode>;
