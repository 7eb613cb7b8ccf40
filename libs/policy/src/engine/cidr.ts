import type { Cidr } from '@cilia/core';
import { parseCidr as parseCidrText, type ParsedCidr } from '../parse/cidr.js';

export type { ParsedCidr };

// CIDR identities are tested against every CIDR selector on each event; their labels repeat.
const parsed = new Map<string, ParsedCidr | undefined>();
const MEMO_LIMIT = 65536;

/** Parses `10.0.0.0/8` or `fd00::/64` (memoized); undefined for anything else. */
export function parseCidr(cidr: Cidr): ParsedCidr | undefined {
  if (parsed.has(cidr)) return parsed.get(cidr);
  const p = parseCidrText(cidr);
  const result = 'problem' in p ? undefined : p;
  if (parsed.size >= MEMO_LIMIT) parsed.clear();
  parsed.set(cidr, result);
  return result;
}

/** Whether `inner` lies inside `outer` (a prefix contains itself). */
export function cidrContains(outer: ParsedCidr, inner: ParsedCidr): boolean {
  if (outer.family !== inner.family || inner.length < outer.length) return false;
  const whole = outer.length >> 3;
  for (let i = 0; i < whole; i++) if (outer.bytes[i] !== inner.bytes[i]) return false;
  const rest = outer.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((outer.bytes[whole]! ^ inner.bytes[whole]!) & mask) === 0;
}
