import type { Direction, L7PeerRules, L7RuleSet } from '@cilia/core';
import type { PolicyFieldError } from '../model.js';

/**
 * What the engine needs from an L7 proxy: which parsers it enforces (a redirect port per parser
 * and direction), their rule validation at import, and the rules of each endpoint, direction
 * and port as they change. Without one, L7 rules are enforced at L4 (and say so).
 */
export interface L7Enforcement {
  /** The proxy port for `parser` in `direction`; undefined when no proxy enforces that parser. */
  redirectPort(parser: string, direction: Direction): number | undefined;
  /** Field errors of one list of rules (paths below `path`); empty when valid. */
  validate(parser: string, rules: readonly unknown[], path: string): PolicyFieldError[];
  /** The rules of one endpoint, direction and port changed (or appeared). */
  publish(set: L7RuleSet): void;
  /** The endpoint, direction and port has no L7 rules any more. */
  withdraw(endpointId: number, direction: Direction, port: number): void;
}

/** The L7 rules of one toPorts entry, by parser. */
export interface L7Part {
  readonly parser: string;
  readonly rules: readonly unknown[];
}

/** `{http: [...]}` → `{parser: 'http', rules}`; `{l7proto: 'x', l7: [...]}` → parser `x`. */
export function l7Part(rules: unknown): (L7Part & { field: string }) | undefined {
  if (typeof rules !== 'object' || rules === null) return undefined;
  const r = rules as Record<string, unknown>;
  for (const field of ['http', 'kafka', 'dns'] as const) if (Array.isArray(r[field])) return { parser: field, rules: r[field] as unknown[], field };
  if (Array.isArray(r.l7) && typeof r.l7proto === 'string') return { parser: r.l7proto, rules: r.l7 as unknown[], field: 'l7' };
  return undefined;
}

/** A rule that allows every request of its protocol: what an L4-only allow of the same key means. */
export const ALLOW_ALL_L7: unknown = Object.freeze({});

/** The rule sets of one endpoint from its entries' L7 parts, keyed `direction/port`. */
export function l7RuleSets(
  endpointId: number,
  entries: Iterable<readonly [{ identity: number; direction: Direction; port: number }, { l7?: { parser: string; rules: readonly unknown[] } }]>,
): Map<string, L7RuleSet> {
  const byPort = new Map<string, { direction: Direction; port: number; parser: string; rules: L7PeerRules[] }>();
  for (const [key, entry] of entries) {
    if (!entry.l7) continue;
    const id = `${key.direction}/${key.port}`;
    let set = byPort.get(id);
    if (!set) byPort.set(id, (set = { direction: key.direction, port: key.port, parser: entry.l7.parser, rules: [] }));
    set.rules.push({ identity: key.identity, rules: entry.l7.rules });
  }
  const out = new Map<string, L7RuleSet>();
  for (const [id, s] of byPort) out.set(id, { endpointId, direction: s.direction, port: s.port, parser: s.parser, rules: s.rules.sort((a, b) => a.identity - b.identity) });
  return out;
}
