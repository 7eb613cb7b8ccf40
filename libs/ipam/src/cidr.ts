import ipaddr from 'ipaddr.js';
import type { IpFamily } from '@cilia/core';

/** A parsed prefix with its address range as integers (BigInt, so IPv6 fits). */
export interface Prefix {
  readonly cidr: string;
  readonly family: IpFamily;
  readonly bits: 32 | 128;
  readonly length: number;
  /** The network address. */
  readonly first: bigint;
  /** The last address of the prefix (the IPv4 broadcast address). */
  readonly last: bigint;
}

/** Parses `10.0.0.0/24` or `fd00::/64`; throws a reason (no field name) on bad input. */
export function parsePrefix(text: string): Prefix {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let length: number;
  try {
    [addr, length] = ipaddr.parseCIDR(text);
  } catch {
    throw new Error(`${JSON.stringify(text)} is not a CIDR (expected e.g. 10.0.0.0/24 or fd00::/64)`);
  }
  const family: IpFamily = addr.kind() === 'ipv4' ? 'ipv4' : 'ipv6';
  const bits = family === 'ipv4' ? 32 : 128;
  const value = toBigInt(addr);
  const hostBits = BigInt(bits - length);
  const first = (value >> hostBits) << hostBits;
  if (first !== value) {
    throw new Error(`${text} has host bits set; the network is ${fromBigInt(first, family)}/${length}`);
  }
  return { cidr: `${fromBigInt(first, family)}/${length}`, family, bits, length, first, last: first + (1n << hostBits) - 1n };
}

/** Parses one address; throws a reason on bad input. */
export function parseAddress(text: string): { family: IpFamily; value: bigint } {
  if (!ipaddr.isValid(text)) throw new Error(`${JSON.stringify(text)} is not an IP address`);
  const addr = ipaddr.parse(text);
  const plain = addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
  return { family: plain.kind() === 'ipv4' ? 'ipv4' : 'ipv6', value: toBigInt(plain) };
}

function toBigInt(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return addr.toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

/** The canonical text of an address given as an integer. */
export function fromBigInt(value: bigint, family: IpFamily): string {
  const bytes = family === 'ipv4' ? 4 : 16;
  const out: number[] = [];
  for (let i = bytes - 1; i >= 0; i--) out.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(out).toString();
}
