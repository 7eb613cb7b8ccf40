// Text ⇄ bytes for IP addresses, CIDRs and MACs. Output is always canonical: dotted quads,
// RFC 5952 IPv6 (lower case, longest zero run compressed), lower-case colon-separated MACs.
import ipaddr from 'ipaddr.js';
import { NetlinkInputError } from './errors.js';

/** 4 for IPv4, 6 for IPv6. */
export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  bytes: Uint8Array;
}

export interface ParsedCidr extends ParsedIp {
  prefixLength: number;
}

/** Parses an IPv4 or IPv6 address; undefined if it is neither. */
export function tryParseIp(text: string): ParsedIp | undefined {
  // Strict forms only: four decimal parts without leading zeros ("010" is octal to some
  // parsers), and IPv6 without a zone index, which netlink has no field for.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { family: 4, bytes: Uint8Array.from(ipaddr.IPv4.parse(text).toByteArray()) };
  if (!text.includes('%') && ipaddr.IPv6.isValid(text)) return { family: 6, bytes: Uint8Array.from(ipaddr.IPv6.parse(text).toByteArray()) };
  return undefined;
}

/** Parses an address, throwing a NetlinkInputError naming `field` if it is not one. */
export function parseIp(text: unknown, field: string): ParsedIp {
  if (typeof text !== 'string') throw new NetlinkInputError(field, `expected an IP address string, got ${typeof text}`);
  const ip = tryParseIp(text);
  if (!ip) throw new NetlinkInputError(field, `"${text}" is not a valid IPv4 or IPv6 address`);
  return ip;
}

/**
 * Parses "address/prefix" (a bare address means a host prefix). With `network`, host bits
 * must be zero, as the kernel demands of route destinations.
 */
export function parseCidr(text: unknown, field: string, options: { network?: boolean } = {}): ParsedCidr {
  if (typeof text !== 'string') throw new NetlinkInputError(field, `expected a CIDR string, got ${typeof text}`);
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const ip = tryParseIp(addressText);
  if (!ip) throw new NetlinkInputError(field, `"${text}" is not a valid CIDR (bad address "${addressText}")`);
  const max = ip.family === 4 ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      throw new NetlinkInputError(field, `"${text}" is not a valid CIDR (prefix length must be 0..${max})`);
    }
    prefixLength = Number(prefixText);
  }
  if (options.network) {
    const masked = maskBytes(ip.bytes, prefixLength);
    if (!masked.every((b, i) => b === ip.bytes[i])) {
      throw new NetlinkInputError(
        field,
        `"${text}" has host bits set (the network is ${formatIp(masked)}/${prefixLength})`,
      );
    }
  }
  return { ...ip, prefixLength };
}

function maskBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - 8 * i));
    out[i] = bytes[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** Canonical text of a 4- or 16-byte address. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const isV4Mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isV4Mapped) return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  // RFC 5952 (ipaddr.js 2's toString): lower case, the longest run of zero groups compressed.
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with dashes), throwing a NetlinkInputError naming `field`. */
export function parseMac(text: unknown, field: string): Uint8Array {
  if (typeof text !== 'string' || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new NetlinkInputError(field, `${JSON.stringify(text)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  }
  return Uint8Array.from(text.split(/[:-]/).map((h) => parseInt(h, 16)));
}

/** "aa:bb:cc:dd:ee:ff" for 6 bytes; other hardware addresses in the same colon-hex form. */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Family number used by the kernel (AF_INET / AF_INET6). */
export function addressFamily(family: IpFamily): number {
  return family === 4 ? 2 : 10;
}
