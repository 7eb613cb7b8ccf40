import type { KubeObject } from '@cilia/core';
import { parseBandwidth } from './quantity.js';

/** The Pod annotations the bandwidth manager reads, by direction (as the CNI bandwidth plugin and Cilium name them). */
export const BANDWIDTH_ANNOTATIONS = {
  egress: 'kubernetes.io/egress-bandwidth',
  ingress: 'kubernetes.io/ingress-bandwidth',
} as const;

export type BandwidthDirection = keyof typeof BANDWIDTH_ANNOTATIONS;

/** One direction of a Pod's limit: a rate, or why its annotation was refused. */
export type AnnotatedLimit = { readonly bitsPerSecond: number; readonly annotation: string } | { readonly error: string; readonly path: string };

/** What a Pod's annotations ask for; a direction without its annotation is absent (no limit). */
export type PodBandwidth = Partial<Record<BandwidthDirection, AnnotatedLimit>>;

/** The field path of a direction's annotation, as an error names it. */
export function annotationPath(direction: BandwidthDirection): string {
  return `metadata.annotations["${BANDWIDTH_ANNOTATIONS[direction]}"]`;
}

/** The limits a Pod's `kubernetes.io/{egress,ingress}-bandwidth` annotations ask for. */
export function podBandwidth(pod: KubeObject): PodBandwidth {
  const annotations = pod.metadata.annotations ?? {};
  const out: PodBandwidth = {};
  for (const direction of ['egress', 'ingress'] as const) {
    const text = annotations[BANDWIDTH_ANNOTATIONS[direction]];
    if (text === undefined) continue;
    const parsed = parseBandwidth(text);
    out[direction] = 'error' in parsed ? { error: parsed.error, path: annotationPath(direction) } : { bitsPerSecond: parsed.bitsPerSecond, annotation: text };
  }
  return out;
}
