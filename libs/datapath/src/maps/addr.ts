// Codecs for addresses as the datapath maps store them: an IP in a 16-byte field beside its
// family byte, and MACs as six bytes.
import { isIPv4, isIPv6 } from 'node:net';
import type { Codec } from '@cilia/bpf';

/** `AF_INET` / `AF_INET6` as the family byte of map keys. */
export const AddressFamily = { ipv4: 2, ipv6: 10 } as const;

/** Writes `ip` into `buf[at..at+16)`: IPv4 in the first four bytes, the rest zero. Returns its family byte. */
export function encodeAddress(ip: string, buf: Buffer, at: number, what = 'address'): number {
  buf.fill(0, at, at + 16);
  if (isIPv4(ip)) {
    ip.split('.').forEach((part, i) => (buf[at + i] = Number(part)));
    return AddressFamily.ipv4;
  }
  if (isIPv6(ip)) {
    ipv6Bytes(ip).copy(buf, at);
    return AddressFamily.ipv6;
  }
  throw new TypeError(`${what}: not an IP address: '${ip}'`);
}

/** Reads the address stored by {@link encodeAddress}. */
export function decodeAddress(buf: Buffer, at: number, family: number): string {
  if (family === AddressFamily.ipv4) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(at + i).toString(16));
  // The URL parser prints IPv6 in its canonical (RFC 5952) form.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail] = ip.split('::');
  const parse = (s: string): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** A MAC address (`__u8 mac[6]`) as `aa:bb:cc:dd:ee:ff`. */
export const mac: Codec<string> = {
  size: 6,
  align: 1,
  encode(v, b, o) {
    const parts = v.split(':');
    if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
      throw new TypeError(`not a MAC address: '${v}'`);
    }
    parts.forEach((p, i) => (b[o + i] = parseInt(p, 16)));
  },
  decode: (b, o) =>
    Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':'),
};
