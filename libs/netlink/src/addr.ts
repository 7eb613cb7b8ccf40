// Text ⇄ bytes for IP addresses, CIDRs and MACs. Output is always canonical: dotted quads,
// RFC 5952 IPv6 (lower case, longest zero run compressed), lower-case colon-separated MACs.
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

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

function parseGroups(text: string, allowTrailingV4: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (allowTrailingV4 && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIPv4(part);
      if (!v4) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
    groups.push(parseInt(part, 16));
  }
  return groups;
}

function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    if (!head || !tail) return undefined;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    const all = parseGroups(text, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  if (groups.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** Parses an IPv4 or IPv6 address; undefined if it is neither. */
export function tryParseIp(text: string): ParsedIp | undefined {
  if (text.includes(':')) {
    const bytes = parseIPv6(text);
    return bytes ? { family: 6, bytes } : undefined;
  }
  const bytes = parseIPv4(text);
  return bytes ? { family: 4, bytes } : undefined;
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
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
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
