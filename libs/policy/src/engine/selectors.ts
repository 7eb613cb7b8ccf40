import type { Labels } from '@cilia/core';
import type { EndpointSelector, LabelRequirement } from '../model.js';

/** The values of every label `requirement.key` names (`any:app` names `app` of every source). */
function valuesFor(key: string, labels: Labels): string[] {
  if (!key.startsWith('any:')) {
    const v = labels[key];
    return v === undefined ? [] : [v];
  }
  const name = key.slice(4);
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) if (k.slice(k.indexOf(':') + 1) === name) out.push(v);
  return out;
}

/** Kubernetes LabelSelector semantics: NotIn and DoesNotExist also match an absent label. */
export function requirementMatches(req: LabelRequirement, labels: Labels): boolean {
  const values = valuesFor(req.key, labels);
  switch (req.operator) {
    case 'Exists':
      return values.length > 0;
    case 'DoesNotExist':
      return values.length === 0;
    case 'In':
      return values.some((v) => req.values.includes(v));
    case 'NotIn':
      return !values.some((v) => req.values.includes(v));
  }
}

export function selectorMatches(selector: EndpointSelector, labels: Labels): boolean {
  return selector.requirements.every((r) => requirementMatches(r, labels));
}

const requirementKey = (r: LabelRequirement): string => JSON.stringify([r.key, r.operator, [...r.values].sort()]);

/** One string per distinct selector, whatever the order its requirements were written in. */
export function selectorKey(selector: EndpointSelector): string {
  return [...new Set(selector.requirements.map(requirementKey))].sort().join(',');
}

/** All requirements of every selector ANDed into one (fromRequires folded into a peer). */
export function andSelectors(selectors: readonly EndpointSelector[]): EndpointSelector {
  const byKey = new Map<string, LabelRequirement>();
  for (const s of selectors) for (const r of s.requirements) byKey.set(requirementKey(r), r);
  return { requirements: [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r) };
}

/** `{k8s:app=a, k8s:io.kubernetes.pod.namespace=x}`, for trace lines and logs. */
export function formatLabels(labels: Labels): string {
  return `{${Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`))
    .join(', ')}}`;
}
