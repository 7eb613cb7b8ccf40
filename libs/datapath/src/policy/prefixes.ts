// Raw policy entries (core PolicyKey/PolicyEntry) → the prefixes of the cilia_policy LPM trie,
// and back. The datapath does two longest-prefix lookups per packet ({peer}, {identity 0}) and
// lets a deny from either win; for that to equal "deny if any matching deny, else allow if any
// matching allow", an allow prefix must never be nested inside a deny prefix of the same
// (direction, identity): LPM would pick the allow. Prefixes nest or are disjoint, so dropping
// such allows is exact (every packet they match, the enclosing deny matches too).
import type { PolicyEntry, PolicyKey } from '@cilia/core';
import { Direction } from '../maps/monitor.js';
import {
  POLICY_FLAGS,
  POLICY_PREFIX_FULL,
  POLICY_PREFIX_PORT,
  POLICY_PREFIX_PROTO,
  POLICY_PREFIX_STATIC,
  type PolicyMapValueValue,
} from '../maps/policy.js';

/** Protocols a port without a protocol stands for (Cilium's ANY + port). */
export const ANY_PROTOCOL_WITH_PORT: readonly number[] = [6, 17, 132];

/** One cilia_policy entry of an endpoint (the endpoint id is the bucket it lives in). */
export interface PolicyPrefix {
  /** 0 ingress, 1 egress (`enum cilia_direction`). */
  readonly direction: number;
  readonly identity: number;
  /** Bits after the prefixlen field that count: 64 any protocol, 72 a protocol, 80..96 ports. */
  readonly prefixlen: number;
  readonly protocol: number;
  /** First port of the prefix (bits beyond the prefix are zero). */
  readonly dport: number;
}

/** A prefix and what the map holds for it. */
export interface PolicyPrefixEntry {
  readonly prefix: PolicyPrefix;
  readonly value: PolicyMapValueValue;
}

/** Identifies a prefix within one endpoint. */
export function prefixId(p: PolicyPrefix): string {
  return `${p.direction}/${p.identity}/${p.prefixlen}/${p.protocol}/${p.dport}`;
}

/** The prefix bits after the fixed 64 as one 32-bit number (protocol, pad2 = 0, port). */
const variableBits = (p: PolicyPrefix): number => ((p.protocol << 24) | p.dport) >>> 0;

function maskBits(len: number): number {
  const bits = len - POLICY_PREFIX_STATIC;
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Whether every key `inner` matches is matched by `outer` (same direction and identity). */
export function prefixContains(outer: PolicyPrefix, inner: PolicyPrefix): boolean {
  if (outer.direction !== inner.direction || outer.identity !== inner.identity) return false;
  if (outer.prefixlen > inner.prefixlen) return false;
  const mask = maskBits(outer.prefixlen);
  return ((variableBits(inner) & mask) >>> 0) === ((variableBits(outer) & mask) >>> 0);
}

/** Lengths a prefix can have; the ancestors of a prefix have one of these lengths. */
const PREFIX_LENGTHS = [POLICY_PREFIX_STATIC, POLICY_PREFIX_PROTO, ...Array.from({ length: 17 }, (_, i) => POLICY_PREFIX_PORT + i)];

const TWO_32 = 2 ** 32;

/**
 * A prefix within its (direction, identity) group as one number — the length beyond the fixed
 * 64 bits above the 32 variable bits — so the writer's per-endpoint mirror holds numbers, not
 * objects (hundreds of endpoints × a thousand prefixes each).
 */
export function prefixCode(p: Pick<PolicyPrefix, 'prefixlen' | 'protocol' | 'dport'>): number {
  return (p.prefixlen - POLICY_PREFIX_STATIC) * TWO_32 + variableBits(p as PolicyPrefix);
}

export function prefixOfCode(direction: number, identity: number, code: number): PolicyPrefix {
  const len = Math.floor(code / TWO_32);
  const bits = code - len * TWO_32;
  return { direction, identity, prefixlen: POLICY_PREFIX_STATIC + len, protocol: bits >>> 24, dport: bits & 0xffff };
}

/** A map value as one number (flags, proxy port above them). */
export const valueCode = (v: PolicyMapValueValue): number => v.flags | (v.proxyPort << 8);
export const valueOfCode = (code: number): PolicyMapValueValue => ({ flags: code & 0xff, proxyPort: code >>> 8 });

/** The code of the prefix `code` cut to `len` bits (len ≤ its length). */
function truncateCode(code: number, len: number): number {
  const bits = code % TWO_32;
  return (len - POLICY_PREFIX_STATIC) * TWO_32 + ((bits & maskBits(len)) >>> 0);
}

/** (direction, identity) as one number: deny pruning never looks beyond it, so it is the unit of change. */
export const groupCode = (direction: number, identity: number): number => direction * TWO_32 + identity;
export const groupOfCode = (code: number): { direction: number; identity: number } => ({ direction: Math.floor(code / TWO_32), identity: code % TWO_32 });

/** Splits the inclusive port range [from, to] into the fewest aligned prefixes (value, bits). */
export function portRangePrefixes(from: number, to: number): Array<{ port: number; bits: number }> {
  const out: Array<{ port: number; bits: number }> = [];
  let at = from;
  while (at <= to) {
    // The largest aligned block starting at `at` that does not run past `to`.
    let size = at === 0 ? 65536 : at & -at;
    while (at + size - 1 > to) size /= 2;
    out.push({ port: at, bits: 16 - Math.log2(size) });
    at += size;
  }
  return out;
}

function fail(path: string, reason: string): never {
  throw new RangeError(`${path}: ${reason}`);
}

const isInt = (v: unknown, min: number, max: number): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

// The checks build their messages only on failure: every key of every endpoint passes here.

/** Throws a RangeError naming `path.<field>` when `key` is no valid policy key. */
export function checkPolicyKey(key: PolicyKey, path = 'key'): void {
  if (key.direction !== 'ingress' && key.direction !== 'egress') fail(`${path}.direction`, `must be 'ingress' or 'egress', got ${JSON.stringify(key.direction)}`);
  if (!isInt(key.identity, 0, 0xffffffff)) fail(`${path}.identity`, `must be an integer in 0..4294967295, got ${key.identity}`);
  if (!isInt(key.protocol, 0, 255)) fail(`${path}.protocol`, `must be an integer in 0..255, got ${key.protocol}`);
  if (!isInt(key.port, 0, 65535)) fail(`${path}.port`, `must be an integer in 0..65535, got ${key.port}`);
  if (key.port === 0) return;
  const end = key.endPort === 0 || key.endPort === undefined ? key.port : key.endPort;
  if (!isInt(end, key.port, 65535)) fail(`${path}.endPort`, `must be an integer in ${key.port}..65535 (port..65535), got ${key.endPort}`);
}

/** The prefixes one raw key stands for (`path` names it in errors). */
export function keyPrefixes(key: PolicyKey, path = 'key'): PolicyPrefix[] {
  checkPolicyKey(key, path);
  return prefixesOf(key);
}

/** keyPrefixes of a key known to be valid. */
function prefixesOf(key: PolicyKey): PolicyPrefix[] {
  const direction = Direction[key.direction];
  const base = { direction, identity: key.identity };
  if (key.protocol === 0 && key.port === 0) return [{ ...base, prefixlen: POLICY_PREFIX_STATIC, protocol: 0, dport: 0 }];
  const protocols = key.protocol === 0 ? ANY_PROTOCOL_WITH_PORT : [key.protocol];
  if (key.port === 0) return protocols.map((protocol) => ({ ...base, prefixlen: POLICY_PREFIX_PROTO, protocol, dport: 0 }));
  const end = key.endPort === 0 || key.endPort === undefined ? key.port : key.endPort;
  const ranges = portRangePrefixes(key.port, end);
  return protocols.flatMap((protocol) => ranges.map((r) => ({ ...base, prefixlen: POLICY_PREFIX_PORT + r.bits, protocol, dport: r.port })));
}

/** Throws a RangeError naming `path.<field>` when `entry` is no valid map value. */
export function checkPolicyEntry(entry: PolicyEntry, path = 'entry'): void {
  if (entry.verdict !== 'allow' && entry.verdict !== 'deny') fail(`${path}.verdict`, `must be 'allow' or 'deny', got ${JSON.stringify(entry.verdict)}`);
  if (!isInt(entry.proxyPort, 0, 65535)) fail(`${path}.proxyPort`, `must be an integer in 0..65535, got ${entry.proxyPort}`);
}

/**
 * The map entries of ONE (direction, identity) group, as prefix code → value code: ranges
 * split, the same prefix from an allow and a deny kept as deny, and allows nested in a deny
 * left out. Entries must be valid (checkPolicyKey, checkPolicyEntry).
 */
export function groupPrefixes(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): Map<number, number> {
  const out = new Map<number, number>();
  let denies = 0;
  for (const [key, entry] of entries) {
    const deny = entry.verdict === 'deny';
    for (const prefix of prefixesOf(key)) {
      const code = prefixCode(prefix);
      const had = out.get(code);
      if (had !== undefined && had & POLICY_FLAGS.deny) continue;
      const wildcard = prefix.prefixlen <= POLICY_PREFIX_PROTO ? POLICY_FLAGS.wildcardPort : 0;
      if (deny) {
        out.set(code, POLICY_FLAGS.deny | wildcard);
        denies++;
      } else if (had === undefined || (had >>> 8 === 0 && entry.proxyPort !== 0)) {
        out.set(code, wildcard | (entry.proxyPort << 8));
      }
    }
  }
  if (denies === 0) return out;
  for (const [code, value] of out) {
    if (value & POLICY_FLAGS.deny) continue;
    const len = POLICY_PREFIX_STATIC + Math.floor(code / TWO_32);
    for (const shorter of PREFIX_LENGTHS) {
      if (shorter >= len) break;
      if ((out.get(truncateCode(code, shorter)) ?? 0) & POLICY_FLAGS.deny) {
        out.delete(code);
        break;
      }
    }
  }
  return out;
}

/**
 * The map entries of one endpoint for its raw entries (groupPrefixes of each (direction,
 * identity) group), by prefix id. Throws a RangeError naming `entries[i].key.<field>` or
 * `entries[i].entry.<field>` for a bad entry.
 */
export function policyPrefixes(entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>): Map<string, PolicyPrefixEntry> {
  const groups = new Map<number, Array<readonly [PolicyKey, PolicyEntry]>>();
  entries.forEach((e, i) => {
    checkPolicyEntry(e[1], `entries[${i}].entry`);
    checkPolicyKey(e[0], `entries[${i}].key`);
    const g = groupCode(Direction[e[0].direction], e[0].identity);
    const list = groups.get(g);
    if (list) list.push(e);
    else groups.set(g, [e]);
  });
  const out = new Map<string, PolicyPrefixEntry>();
  for (const [g, list] of groups) {
    const { direction, identity } = groupOfCode(g);
    for (const [code, value] of groupPrefixes(list)) {
      const prefix = prefixOfCode(direction, identity, code);
      out.set(prefixId(prefix), { prefix, value: valueOfCode(value) });
    }
  }
  return out;
}

/** A map prefix as a readable entry: a port prefix becomes the range port..endPort. */
export function describePrefix(p: PolicyPrefix): { protocol: number; port: number; endPort: number } {
  if (p.prefixlen < POLICY_PREFIX_PORT) return { protocol: p.protocol, port: 0, endPort: 0 };
  return { protocol: p.protocol, port: p.dport, endPort: p.dport + 2 ** (POLICY_PREFIX_FULL - p.prefixlen) - 1 };
}
