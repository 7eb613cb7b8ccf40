import type { ResourceRef } from '@cilia/core';

/** A map key for a resource: `Pod/default/web`, `Namespace//shop`. */
export function refKey(ref: ResourceRef): string {
  return `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

/** A resource as people write it: `Pod default/web`, `Namespace shop`. */
export function describeRef(ref: ResourceRef): string {
  return ref.namespace === undefined ? `${ref.kind} ${ref.name}` : `${ref.kind} ${ref.namespace}/${ref.name}`;
}
