/** A parse error of a selector; the server answers 400 with its message. */
export class SelectorError extends Error {}

type LabelRequirement =
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' | '!exists' };

/** Objects' labels → whether they match. */
export type Matcher = (labels: Readonly<Record<string, string>>) => boolean;

/** Splits at commas outside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Parses a label selector as Kubernetes writes them: `a=b,c!=d,e in (f,g),h notin (i),j,!k`. */
export function parseLabelSelector(text: string): Matcher {
  const reqs: LabelRequirement[] = [];
  for (const term of terms(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term))) {
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term))) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] });
    } else if ((m = /^!\s*(\S+)$/.exec(term))) {
      reqs.push({ key: m[1]!, op: '!exists' });
    } else if ((m = /^(\S+)$/.exec(term))) {
      reqs.push({ key: m[1]!, op: 'exists' });
    } else throw new SelectorError(`unable to parse requirement: ${term}`);
  }
  for (const r of reqs) if (!KEY.test(r.key)) throw new SelectorError(`unable to parse requirement: invalid label key "${r.key}"`);
  return (labels) =>
    reqs.every((r) => {
      const has = Object.hasOwn(labels, r.key);
      switch (r.op) {
        case 'exists':
          return has;
        case '!exists':
          return !has;
        case 'in':
          return has && r.values.includes(labels[r.key]!);
        case 'notin':
          return !has || !r.values.includes(labels[r.key]!);
      }
    });
}

/** Objects → whether they match a field selector. */
export type FieldMatcher = (object: Record<string, unknown>) => boolean;

/** The value a field selector compares: the field's text, `''` when absent. */
export function fieldValue(object: Record<string, unknown>, path: string): string {
  let at: unknown = object;
  for (const part of path.split('.')) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
  return at === undefined || at === null ? '' : String(at);
}

/**
 * Parses a field selector (`spec.nodeName=n1,metadata.name!=x`); only the fields the kind
 * supports are accepted, as the real server does ("field label not supported").
 */
export function parseFieldSelector(text: string, supported: readonly string[]): FieldMatcher {
  const reqs: { path: string; equal: boolean; value: string }[] = [];
  for (const term of terms(text)) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid selector: '${text}'; can't understand '${term}'`);
    const path = m[1]!.trim();
    if (!['metadata.name', 'metadata.namespace', ...supported].includes(path)) throw new SelectorError(`field label not supported: ${path}`);
    reqs.push({ path, equal: m[2] !== '!=', value: m[3]!.trim() });
  }
  return (object) => reqs.every((r) => (fieldValue(object, r.path) === r.value) === r.equal);
}
