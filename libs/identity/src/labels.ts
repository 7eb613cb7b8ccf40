import type { Labels } from '@cilia/core';

/** The label carrying a pod's namespace; always identity-relevant. */
export const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace';
/** Prefix of the labels that carry the pod namespace's own labels (as Cilium names them). */
export const NAMESPACE_LABELS_PREFIX = 'k8s:io.cilium.k8s.namespace.labels.';
/** The label Kubernetes puts on every namespace, naming it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * Cilium's default exclusions, as regular expressions over the label key without its source
 * (`k8s:pod-template-hash` → `pod-template-hash`), anchored at the start: hashes, generations,
 * per-pod names and indexes, job ids — anything that would mint one identity per pod.
 */
export const DEFAULT_EXCLUDE: readonly string[] = [
  'io\\.kubernetes',
  '(.*\\.)?kubernetes\\.io/',
  '(.*\\.)?k8s\\.io/',
  'pod-template-generation$',
  'pod-template-hash$',
  'controller-revision-hash$',
  'controller-uid$',
  'job-name$',
  'annotation\\.',
  'etcd_node$',
];

/** Kept despite the exclusions (Cilium's default keeps `app.kubernetes.io/*`). */
export const DEFAULT_INCLUDE: readonly string[] = ['app\\.kubernetes\\.io/'];

/** Labels that are part of identity whatever the filter says. */
const MANDATORY = [/^reserved:/, /^cidr:/, /^k8s:io\.kubernetes\.pod\.namespace$/, /^k8s:io\.cilium\.k8s\.namespace\.labels\./, /^k8s:io\.cilium\.k8s\.policy\./];

/** Decides which labels are identity-relevant. */
export interface LabelFilter {
  /** The identity-relevant subset of `labels`. */
  apply(labels: Labels): Labels;
}

/**
 * A label is kept when it is mandatory (reserved, CIDR, the namespace and its labels), or its
 * key matches an `include` pattern, or it matches no `exclude` pattern. So `include` punches
 * holes into `exclude`; `exclude: ['.*']` plus a few includes keeps only those.
 * Patterns are regular expressions anchored at the start of the key without its source.
 */
export function labelFilter(options: { include?: readonly string[]; exclude?: readonly string[] } = {}): LabelFilter {
  const compile = (list: readonly string[], field: string) =>
    list.map((p, i) => {
      try {
        return new RegExp(`^(?:${p})`);
      } catch (err) {
        throw new TypeError(`${field}[${i}]: ${(err as Error).message}`);
      }
    });
  const include = compile(options.include ?? DEFAULT_INCLUDE, 'include');
  const exclude = compile(options.exclude ?? DEFAULT_EXCLUDE, 'exclude');
  return {
    apply(labels) {
      const kept: Record<string, string> = {};
      for (const [key, value] of Object.entries(labels)) {
        if (relevant(key)) kept[key] = value;
      }
      return kept;
    },
  };
  function relevant(key: string): boolean {
    if (MANDATORY.some((r) => r.test(key))) return true;
    const bare = key.slice(key.indexOf(':') + 1);
    return include.some((r) => r.test(bare)) || !exclude.some((r) => r.test(bare));
  }
}

/**
 * Cilium's sorted label list: `source:key=value;` for each label, sorted by key. It names a
 * label set in the KvStore (`value/<this>/<node>`) and is the value of `id/<id>`.
 */
export function labelsKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]};`)
    .join('');
}

/** Inverse of {@link labelsKey}; undefined when `text` is not one. */
export function parseLabelsKey(text: string): Labels | undefined {
  if (text !== '' && !text.endsWith(';')) return undefined;
  const labels: Record<string, string> = {};
  for (const item of text.split(';').slice(0, -1)) {
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

/** A label the identity key layout cannot carry; `path` names it (`labels.<key>`). */
export class IdentityLabelError extends TypeError {
  constructor(
    readonly reason: string,
    readonly path: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'IdentityLabelError';
  }
}

/** Refuses labels that the key layout cannot carry unambiguously; names the label. */
export function checkEncodable(labels: Labels): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k === '' || /[=;]/.test(k)) throw new IdentityLabelError('a label key must be non-empty and contain no "=" or ";"', `labels.${k}`);
    if (v.includes(';')) throw new IdentityLabelError('a label value must not contain ";"', `labels.${k}`);
  }
}
