// CiliumNetworkPolicy `rules.http`: validation at import and matching per request.
//
// As Cilium (through Envoy's safe_regex, a full match) anchors them, `method`, `path` and
// `host` are regular expressions that must match the whole value: `/public/.*` admits
// `/public/x` and not `/x/public/y`. `headers` entries are `Name` (present) or `Name: value`,
// whose value is matched the same way, anchored (a plain value therefore means itself).
// `headerMatches` entries {name, value?, mismatch?} : a request whose header differs fails the
// rule unless `mismatch` says what to do instead — LOG (pass, and the decision says so), ADD,
// DELETE or REPLACE (pass, with the header changed on the way upstream).
import type { L7RuleError } from '@cilia/core';

export type MismatchAction = 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
const MISMATCH_ACTIONS: readonly MismatchAction[] = ['LOG', 'ADD', 'DELETE', 'REPLACE'];

interface HeaderMatch {
  readonly name: string;
  /** Anchored regex of the value; undefined: present. */
  readonly value?: RegExp;
  /** The literal value (ADD/REPLACE write it). */
  readonly literal?: string;
  readonly mismatch?: MismatchAction;
}

/** One compiled rule: every field given must match. */
export interface HttpRule {
  readonly method?: RegExp;
  readonly path?: RegExp;
  readonly host?: RegExp;
  readonly headers: readonly HeaderMatch[];
  readonly headerMatches: readonly HeaderMatch[];
}

/** What a request looks like to the rules. */
export interface HttpRequestView {
  readonly method: string;
  /** The path with its query, as on the request line. */
  readonly path: string;
  readonly host: string;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** A rule's verdict on a request. */
export interface HttpDecision {
  readonly allowed: boolean;
  /** headerMatches mismatches a passing rule logged or fixed. */
  readonly mismatches: readonly { name: string; action: MismatchAction }[];
  /** Header changes to apply upstream (ADD/REPLACE: set; DELETE: undefined). */
  readonly rewrite: ReadonlyMap<string, string | undefined>;
}

const FIELDS = ['method', 'path', 'host', 'headers', 'headerMatches'];

function anchored(source: string): RegExp {
  return new RegExp(`^(?:${source})$`, 'u');
}

/** Errors of `rules.http` (paths below the list, e.g. `[0].path`); empty when valid. */
export function validateHttpRules(rules: readonly unknown[]): L7RuleError[] {
  const errors: L7RuleError[] = [];
  rules.forEach((rule, i) => compileRule(rule, `[${i}]`, errors));
  return errors;
}

/** The compiled rules; throws with the first error (they were validated at import). */
export function compileHttpRules(rules: readonly unknown[]): HttpRule[] {
  const errors: L7RuleError[] = [];
  const out = rules.map((rule, i) => compileRule(rule, `[${i}]`, errors));
  if (errors.length > 0) throw new Error(`rules.http${errors[0]!.path}: ${errors[0]!.reason}`);
  return out as HttpRule[];
}

function regexField(rule: Record<string, unknown>, field: string, at: string, errors: L7RuleError[]): RegExp | undefined {
  const v = rule[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') {
    errors.push({ path: `${at}.${field}`, reason: `must be a string (a regular expression), got ${typeof v}` });
    return undefined;
  }
  try {
    return anchored(v);
  } catch (err) {
    errors.push({ path: `${at}.${field}`, reason: `invalid regular expression ${JSON.stringify(v)}: ${(err as Error).message}` });
    return undefined;
  }
}

function compileRule(raw: unknown, at: string, errors: L7RuleError[]): HttpRule | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push({ path: at, reason: 'must be an object (method, path, host, headers, headerMatches)' });
    return undefined;
  }
  const rule = raw as Record<string, unknown>;
  for (const key of Object.keys(rule)) if (!FIELDS.includes(key)) errors.push({ path: `${at}.${key}`, reason: `unknown field (one of ${FIELDS.join(', ')})` });
  const headers: HeaderMatch[] = [];
  const rawHeaders = rule.headers ?? [];
  if (!Array.isArray(rawHeaders)) errors.push({ path: `${at}.headers`, reason: 'must be a list of "Name" or "Name: value"' });
  else {
    rawHeaders.forEach((h: unknown, j) => {
      const hp = `${at}.headers[${j}]`;
      if (typeof h !== 'string' || h.trim() === '') return void errors.push({ path: hp, reason: 'must be "Name" or "Name: value"' });
      const colon = h.indexOf(':');
      const name = (colon < 0 ? h : h.slice(0, colon)).trim().toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return void errors.push({ path: hp, reason: `${JSON.stringify(name)} is not a header name` });
      if (colon < 0) return void headers.push({ name });
      const literal = h.slice(colon + 1).trim();
      try {
        headers.push({ name, value: anchored(literal), literal });
      } catch (err) {
        errors.push({ path: hp, reason: `invalid regular expression ${JSON.stringify(literal)}: ${(err as Error).message}` });
      }
    });
  }
  const headerMatches: HeaderMatch[] = [];
  const rawMatches = rule.headerMatches ?? [];
  if (!Array.isArray(rawMatches)) errors.push({ path: `${at}.headerMatches`, reason: 'must be a list of {name, value, mismatch}' });
  else {
    rawMatches.forEach((m: unknown, j) => {
      const mp = `${at}.headerMatches[${j}]`;
      if (typeof m !== 'object' || m === null) return void errors.push({ path: mp, reason: 'must be an object {name, value, mismatch}' });
      const { name, value, mismatch, ...rest } = m as Record<string, unknown>;
      for (const k of Object.keys(rest)) errors.push({ path: `${mp}.${k}`, reason: 'unknown field (one of name, value, mismatch)' });
      if (typeof name !== 'string' || name === '') return void errors.push({ path: `${mp}.name`, reason: 'required: a header name' });
      if (value !== undefined && typeof value !== 'string') return void errors.push({ path: `${mp}.value`, reason: 'must be a string' });
      if (mismatch !== undefined && !MISMATCH_ACTIONS.includes(mismatch as MismatchAction)) {
        return void errors.push({ path: `${mp}.mismatch`, reason: `${JSON.stringify(mismatch)} is not one of ${MISMATCH_ACTIONS.join(', ')} (leave it out to fail the request)` });
      }
      const literal = value as string | undefined;
      headerMatches.push({
        name: name.toLowerCase(),
        ...(literal !== undefined ? { value: new RegExp(`^${literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), literal } : {}),
        ...(mismatch !== undefined ? { mismatch: mismatch as MismatchAction } : {}),
      });
    });
  }
  const method = regexField(rule, 'method', at, errors);
  const path = regexField(rule, 'path', at, errors);
  const host = regexField(rule, 'host', at, errors);
  return { ...(method ? { method } : {}), ...(path ? { path } : {}), ...(host ? { host } : {}), headers, headerMatches };
}

const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);

/** The request's verdict under rules ORed: the first rule that matches decides. */
export function judgeHttp(rules: readonly HttpRule[], req: HttpRequestView): HttpDecision {
  const path = req.path;
  const host = req.host.replace(/:\d+$/, '');
  for (const rule of rules) {
    if (rule.method && !rule.method.test(req.method)) continue;
    if (rule.path && !rule.path.test(path)) continue;
    if (rule.host && !rule.host.test(host) && !rule.host.test(req.host)) continue;
    if (!rule.headers.every((h) => matches(h, headerValue(req.headers[h.name])))) continue;
    const mismatches: { name: string; action: MismatchAction }[] = [];
    const rewrite = new Map<string, string | undefined>();
    let ok = true;
    for (const m of rule.headerMatches) {
      if (matches(m, headerValue(req.headers[m.name]))) continue;
      if (!m.mismatch) {
        ok = false;
        break;
      }
      mismatches.push({ name: m.name, action: m.mismatch });
      if (m.mismatch === 'DELETE') rewrite.set(m.name, undefined);
      else if (m.mismatch === 'ADD' || m.mismatch === 'REPLACE') rewrite.set(m.name, m.literal ?? '');
    }
    if (ok) return { allowed: true, mismatches, rewrite };
  }
  return { allowed: false, mismatches: [], rewrite: new Map() };
}

function matches(h: HeaderMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  return h.value ? h.value.test(value) : true;
}
