import type { PluginCandidate } from '@cilia/core';

/**
 * The agent's base module: default providers of kernel tokens (host-scope IPAM, identity
 * allocator, embedded KvStore, …) that a configured plugin may replace. Each arrives with the
 * library that implements it; until then a plugin requiring one of those tokens is refused
 * with the token named.
 */
export function defaultPlugins(): PluginCandidate[] {
  return [];
}
