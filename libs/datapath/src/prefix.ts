import ipaddr from 'ipaddr.js';

/** A parsed prefix: family, prefix length, and the address as a big-endian integer. */
export interface Prefix {
  readonly family: 'ipv4' | 'ipv6';
  readonly length: number;
  readonly value: bigint;
  /** Canonical `addr/len` text with host bits cleared. */
  readonly cidr: string;
}

// Dotted quad without leading zeros, optional /len: the ipcache's hot path (every entry of
// every batch goes through here), so it stays in plain numbers.
const IPV4_PREFIX = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})(?:\/(0|[1-9]\d?))?$/;

/** Parses `a.b.c.d`, an IPv6 address, or either with `/len` (a bare address is a host prefix). */
export function parsePrefix(text: string): Prefix {
  const v4fast = IPV4_PREFIX.exec(text);
  if (v4fast) {
    const octets = v4fast.slice(1, 5).map(Number);
    const length = v4fast[5] === undefined ? 32 : Number(v4fast[5]);
    if (octets.every((o) => o <= 255) && length <= 32) {
      const value = ((((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!) & (length === 0 ? 0 : ~0 << (32 - length))) >>> 0;
      const dotted = `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
      return { family: 'ipv4', length, value: BigInt(value), cidr: `${dotted}/${length}` };
    }
  }
  const [addr, len, extra] = text.split('/');
  // Strict forms only: ipaddr.js alone would also take "127.1", "0x7f.0.0.1" or a zone index.
  const v4 = addr !== undefined && ipaddr.IPv4.isValidFourPartDecimal(addr);
  if (addr === undefined || extra !== undefined || (!v4 && (addr.includes('%') || !ipaddr.IPv6.isValid(addr)))) {
    throw new TypeError(`"${text}" is not an IP address or CIDR`);
  }
  const family = v4 ? 'ipv4' : 'ipv6';
  const bits = v4 ? 32 : 128;
  const length = len === undefined ? bits : Number(len);
  if (len !== undefined && (!/^\d+$/.test(len) || length > bits)) throw new TypeError(`"${text}": prefix length must be 0-${bits}`);
  const value = ipaddr.parse(addr).toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
  return containing({ family, length: bits, value, cidr: '' }, length);
}

/** The prefix of length `length` that contains `address`. */
export function containing(address: Prefix, length: number): Prefix {
  const bits = address.family === 'ipv4' ? 32 : 128;
  const hostBits = BigInt(bits - length);
  const value = (address.value >> hostBits) << hostBits;
  return { family: address.family, length, value, cidr: `${format(address.family, value)}/${length}` };
}

/** Address text of a prefix (without the length). */
export function prefixAddress(p: Prefix): string {
  return format(p.family, p.value);
}

function format(family: 'ipv4' | 'ipv6', value: bigint): string {
  const bytes = family === 'ipv4' ? 4 : 16;
  const out: number[] = [];
  for (let i = bytes - 1; i >= 0; i--) out.push(Number((value >> BigInt(8 * i)) & 0xffn));
  // RFC 5952 text for IPv6 (ipaddr.js 2's toString).
  return ipaddr.fromByteArray(out).toString();
}
