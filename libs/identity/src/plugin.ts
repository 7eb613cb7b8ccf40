import { definePlugin, Tokens, z, type KubeObject, type Resolver } from '@cilia/core';
import pkg from '../package.json' with { type: 'json' };
import { KvIdentityAllocator } from './allocator.js';
import { identityRoutes } from './api.js';
import { CiliumIdentities, CrdIdentityAllocator } from './crd.js';
import { DEFAULT_EXCLUDE, DEFAULT_INCLUDE, labelFilter } from './labels.js';

const pattern = z.string().superRefine((value, ctx) => {
  try {
    new RegExp(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a regular expression: ${(err as Error).message}` });
  }
});

/** Settings of the identity allocator (the `identity:` section). */
export const identityConfig = z.strictObject({
  mode: z
    .enum(['kvstore', 'crd'])
    .default('kvstore')
    .describe(
      'Where cluster identities live: `kvstore` — the KvStore (embedded, or etcd shared by the nodes), Cilium key layout; `crd` — CiliumIdentity objects in the Kubernetes API (needs @cilia/plugin-kubernetes), no etcd',
    ),
  prefix: z
    .string()
    .regex(/^[^\s]+\/$/, 'must be a key prefix ending with "/"')
    .default('cilium/state/identities/v1/')
    .describe('KvStore prefix of the identity keys (id/<id>, value/<labels>/<node>), as Cilium lays them out'),
  labels: z
    .strictObject({
      include: z.array(pattern).default([...DEFAULT_INCLUDE]).describe('label key patterns kept even when an exclude pattern matches'),
      exclude: z.array(pattern).default([...DEFAULT_EXCLUDE]).describe('label key patterns that are not identity-relevant (anchored regexps over the key without its source)'),
    })
    .default({ include: [...DEFAULT_INCLUDE], exclude: [...DEFAULT_EXCLUDE] }),
  gcGraceSeconds: z.number().int().min(0).default(900).describe('how long an identity no node references is kept before it is deleted'),
  gcIntervalSeconds: z.number().int().min(1).default(60),
  leaseTtlSeconds: z.number().int().min(5).default(30).describe("TTL of the node's lease holding its identity references"),
});

/** The parsed `identity:` section. */
export type IdentityConfig = z.infer<typeof identityConfig>;

/**
 * The agent's default `IdentityAllocator`: cluster identities shared through the KvStore with
 * Cilium's key layout, reserved and CIDR identities, and `/v1/identities`. Namespace labels
 * come from the `ResourceSource`'s Namespace objects when there is one.
 */
export const identityAllocatorPlugin = definePlugin<IdentityConfig>({
  name: pkg.name,
  version: pkg.version,
  apiVersion: '^1',
  configKey: 'identity',
  description: 'Identity allocator: labels to security identities, shared through the KvStore (Cilium key layout) or as CiliumIdentity objects',
  config: identityConfig,
  provides: [Tokens.IdentityAllocator, Tokens.ApiRoutes],
  requires: [Tokens.KvStore],
  optional: [Tokens.ResourceSource, CiliumIdentities],
  register(bind, { config, agent, logger, resolver }) {
    let allocator: KvIdentityAllocator | CrdIdentityAllocator | undefined;
    let unsubscribe: (() => void) | undefined;
    const crd = (r: Resolver) => {
      const store = r.getOptional(CiliumIdentities);
      if (!store) throw new Error('identity.mode: crd keeps identities as CiliumIdentity objects in the Kubernetes API: add @cilia/plugin-kubernetes to plugins');
      return new CrdIdentityAllocator({ store, logger, filter: labelFilter(config.labels) });
    };
    const build = (r: Resolver) =>
      (allocator ??= config.mode === 'crd' ? crd(r) : new KvIdentityAllocator({
        kv: r.get(Tokens.KvStore),
        node: agent.nodeName,
        logger,
        prefix: config.prefix,
        filter: labelFilter(config.labels),
        gcGraceMs: config.gcGraceSeconds * 1000,
        gcIntervalMs: config.gcIntervalSeconds * 1000,
        leaseTtlSeconds: config.leaseTtlSeconds,
      }));
    bind(Tokens.IdentityAllocator).toFactory(build);
    bind(Tokens.ApiRoutes).toFactory((r) => identityRoutes(() => r.get(Tokens.IdentityAllocator)));
    return {
      async start() {
        const identities = build(resolver);
        const source = resolver.getOptional(Tokens.ResourceSource);
        if (source) {
          // Namespace labels are part of identity: wait (briefly) for the first listing before endpoints are adopted.
          let synced!: () => void;
          const ready = new Promise<void>((resolve) => (synced = resolve));
          unsubscribe = source.subscribe(['Namespace'], (event) => {
            if (event.type === 'upsert') identities.setNamespaceLabels(event.object.metadata.name, (event.object as KubeObject).metadata.labels ?? {});
            else if (event.type === 'delete') identities.setNamespaceLabels(event.ref.name, undefined);
            else if (event.type === 'synced') synced();
          });
          const timer = setTimeout(() => {
            logger.warn('namespaces not listed within 5 s; identities are allocated without namespace labels until they are');
            synced();
          }, 5000);
          await ready;
          clearTimeout(timer);
        }
        await identities.start();
      },
      async stop() {
        unsubscribe?.();
        await allocator?.stop();
      },
    };
  },
});
