// CIDR prefixes of CIDR peers: parsed, canonicalized (host bits cleared) and compared.
import ipaddr from 'ipaddr.js';

export interface ParsedCidr {
  /** Canonical text, e.g. `10.0.0.0/8`, `fd00::/64`. */
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly length: number;
  /** Address bytes with the host bits cleared. */
  readonly bytes: readonly number[];
}

/**
 * Parses `10.0.0.0/8` or `fd00::/64`; with `allowAddress` a bare address is its host prefix.
 * Host bits are cleared, as Kubernetes and Cilium do. Returns the reason on bad input.
 */
export function parseCidr(text: string, options: { allowAddress?: boolean } = {}): ParsedCidr | { problem: string } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const lengthText = slash < 0 ? undefined : text.slice(slash + 1);
  if (lengthText === undefined && !options.allowAddress) {
    return { problem: `${JSON.stringify(text)} is not a CIDR (expected e.g. 10.0.0.0/24 or fd00::/64)` };
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(address) && !(address.includes(':') && ipaddr.IPv6.isValid(address))) {
    return { problem: `${JSON.stringify(text)} is not a CIDR (expected e.g. 10.0.0.0/24 or fd00::/64)` };
  }
  const parsed = ipaddr.parse(address);
  const family = parsed.kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const length = lengthText === undefined ? bits : /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : NaN;
  if (!(length >= 0 && length <= bits)) {
    return { problem: `${JSON.stringify(text)} has an invalid prefix length (0–${bits} for IPv${family})` };
  }
  const bytes = mask(parsed.toByteArray(), length);
  return { cidr: `${ipaddr.fromByteArray(bytes).toString()}/${length}`, family, length, bytes };
}

function mask(bytes: readonly number[], length: number): number[] {
  return bytes.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    return byte & ((0xff << (8 - keep)) & 0xff);
  });
}

/** Whether `inner` lies inside `outer` (equal counts as inside). */
export function cidrContains(outer: ParsedCidr, inner: ParsedCidr): boolean {
  if (outer.family !== inner.family || inner.length < outer.length) return false;
  const masked = mask(inner.bytes, outer.length);
  return masked.every((byte, i) => byte === outer.bytes[i]);
}
