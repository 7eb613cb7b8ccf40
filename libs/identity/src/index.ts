/**
 * @cilia/identity — security identities: labels → numeric identity with Cilium's numbering,
 * shared across agents through the KvStore with Cilium's key layout.
 */
export { KvIdentityAllocator, type KvIdentityAllocatorOptions } from './allocator.js';
export { labelFilter, labelsKey, DEFAULT_EXCLUDE, DEFAULT_INCLUDE, IdentityLabelError, type LabelFilter } from './labels.js';
export { RESERVED_IDENTITIES } from './reserved.js';
export { identityAllocatorPlugin, identityConfig, type IdentityConfig } from './plugin.js';
export { CiliumIdentities, CrdIdentityAllocator, type CiliumIdentityStore, type CrdIdentityAllocatorOptions, type IdentityObject } from './crd.js';
export { IdentityRegistry } from './base.js';
