/** A parsed prefix: family, prefix length, and the address as a big-endian integer. */
export interface Prefix {
  readonly family: 'ipv4' | 'ipv6';
  readonly length: number;
  readonly value: bigint;
  /** Canonical `addr/len` text with host bits cleared. */
  readonly cidr: string;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses `a.b.c.d`, an IPv6 address, or either with `/len` (a bare address is a host prefix). */
export function parsePrefix(text: string): Prefix {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) throw new TypeError(`"${text}" is not an IP address or CIDR`);
  const v4 = V4.exec(addr);
  let family: 'ipv4' | 'ipv6';
  let value: bigint;
  if (v4) {
    family = 'ipv4';
    const octets = v4.slice(1).map(Number);
    if (octets.some((o) => o > 255)) throw new TypeError(`"${text}" is not an IP address or CIDR`);
    value = octets.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
  } else {
    family = 'ipv6';
    value = parseV6(addr, text);
  }
  const bits = family === 'ipv4' ? 32 : 128;
  const length = len === undefined ? bits : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > bits || (len !== undefined && !/^\d+$/.test(len))) {
    throw new TypeError(`"${text}": prefix length must be 0-${bits}`);
  }
  const masked = mask(value, length, bits);
  return { family, length, value: masked, cidr: `${format(family, masked)}/${length}` };
}

/** The prefix of length `length` that contains `address`. */
export function containing(address: Prefix, length: number): Prefix {
  const bits = address.family === 'ipv4' ? 32 : 128;
  const value = mask(address.value, length, bits);
  return { family: address.family, length, value, cidr: `${format(address.family, value)}/${length}` };
}

/** Address text of a prefix (without the length). */
export function prefixAddress(p: Prefix): string {
  return format(p.family, p.value);
}

function mask(value: bigint, length: number, bits: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  const hostBits = BigInt(bits - length);
  return value & (all ^ ((1n << hostBits) - 1n));
}

function parseV6(addr: string, text: string): bigint {
  const bad = () => new TypeError(`"${text}" is not an IP address or CIDR`);
  if (!/^[0-9a-fA-F:]+$/.test(addr)) throw bad();
  const halves = addr.split('::');
  if (halves.length > 2) throw bad();
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) throw bad();
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  let value = 0n;
  for (const g of groups) {
    if (g.length === 0 || g.length > 4) throw bad();
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  return value;
}

function format(family: 'ipv4' | 'ipv6', value: bigint): string {
  if (family === 'ipv4') return [24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 255n)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: the longest run (≥ 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
