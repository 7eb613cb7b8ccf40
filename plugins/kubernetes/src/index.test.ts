// The plugin's shape: it takes the ResourceSource over from the manifest directory (which stays
// in the set for its other services), and its section's defaults and refusals.
import { CORE_API_VERSION, composeConfigSchema, parseConfig, resolvePluginSet, Tokens, z } from '@cilia/core';
import { manifestsPlugin } from '@cilia/resources';
import { describe, expect, it } from 'vitest';
import plugin, { type KubernetesConfig } from './index.js';

const section = (document: Record<string, unknown>) => parseConfig(composeConfigSchema(z.object({}), [plugin]), { plugins: [plugin.name], ...document })['kubernetes'] as KubernetesConfig;

describe('@cilia/plugin-kubernetes', () => {
  it('replaces the manifest directory as the ResourceSource', () => {
    const set = resolvePluginSet(
      [
        { definition: manifestsPlugin, origin: 'default' },
        { definition: plugin, origin: 'configured' },
      ],
      { coreVersion: CORE_API_VERSION, hostTokens: [] },
    );
    expect(set.providers.get(Tokens.ResourceSource.id)).toEqual([plugin]);
    expect(set.order.map((p) => p.definition.name)).toContain(manifestsPlugin.name);
  });

  it('defaults to the in-cluster service account; names the key of a bad setting', () => {
    expect(section({})).toEqual({ kubeconfig: '', context: '', retry: { initialMs: 500, maxMs: 30_000 }, watchTimeoutSeconds: 300 });
    expect(() => section({ kubernetes: { watchTimeoutSeconds: 1 } })).toThrow(/kubernetes\.watchTimeoutSeconds: /);
    expect(() => section({ kubernetes: { apiServer: 'https://x' } })).toThrow(/kubernetes\.apiServer: unknown key/);
  });
});
