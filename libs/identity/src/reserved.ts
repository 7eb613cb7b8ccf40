import { ReservedIdentity, type Identity, type Labels } from '@cilia/core';

/** Cilium's names of the reserved identities, as their `reserved:<name>` label. */
const NAMES: Record<keyof typeof ReservedIdentity, string> = {
  unknown: 'unknown',
  host: 'host',
  world: 'world',
  unmanaged: 'unmanaged',
  health: 'health',
  init: 'init',
  remoteNode: 'remote-node',
  kubeApiserver: 'kube-apiserver',
  ingress: 'ingress',
};

/** Every reserved identity with its single `reserved:` label. */
export const RESERVED_IDENTITIES: readonly Identity[] = Object.entries(ReservedIdentity).map(([name, id]) => ({
  id,
  labels: { [`reserved:${NAMES[name as keyof typeof ReservedIdentity]}`]: '' },
  scope: 'reserved' as const,
}));

/** The reserved identity whose label set is exactly `labels`, if any. */
export function reservedFor(labels: Labels): Identity | undefined {
  const keys = Object.keys(labels);
  if (keys.length !== 1 || !keys[0]!.startsWith('reserved:')) return undefined;
  return RESERVED_IDENTITIES.find((r) => Object.keys(r.labels)[0] === keys[0]);
}

/** The `init` identity: what an endpoint carries while its real identity cannot be had. */
export const INIT_IDENTITY: Identity = RESERVED_IDENTITIES.find((r) => r.id === ReservedIdentity.init)!;
