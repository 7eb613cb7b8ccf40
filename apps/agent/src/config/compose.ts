import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  composeConfigSchema,
  parseConfig,
  pluginConfigKey,
  redactSecrets,
  secretPaths,
  z,
  type AgentConfig,
  type AnyPluginDefinition,
  type SecretPath,
} from '@cilia/core';
import { agentSection } from './agent-section.js';
import type { ConfigDocument } from './document.js';

/** The validated whole config. */
export interface EffectiveConfig {
  readonly agent: AgentConfig & { readonly logFile: string; readonly apiSocketGroup: string };
  /** Plugin name → its validated section. */
  readonly sections: ReadonlyMap<string, unknown>;
  /** The whole document with defaults applied and secrets redacted, as `cilia config view` shows it. */
  readonly view: Record<string, unknown>;
  /** Where the fields marked secret are (`agent`, a section key, then keys; `*` for any element). */
  readonly secrets: readonly SecretPath[];
}

const pluginList = z.strictObject({ plugins: z.array(z.string().min(1)).default([]) }).catchall(z.unknown());

/** Phase one: just the plugin list, so the plugins (and their schemas) can be loaded. */
export function pluginSpecifiers(config: ConfigDocument): string[] {
  return parseConfig(pluginList, config.document, config.file).plugins;
}

/** Phase two: the whole document against the agent's section and every plugin's section. */
export function validateConfig(config: ConfigDocument, plugins: readonly AnyPluginDefinition[]): EffectiveConfig {
  const schema = composeConfigSchema(agentSection, plugins);
  const parsed = parseConfig(schema, config.document, config.file);
  const agent = parsed.agent as z.output<typeof agentSection>;
  const filled = {
    ...agent,
    nodeName: agent.nodeName || hostname(),
    cgroupRoot: agent.cgroupRoot || firstCgroup2Mount(),
  };
  const sections = new Map(plugins.map((p) => [p.name, parsed[pluginConfigKey(p)]]));
  const secrets = secretPaths(schema);
  return { agent: filled, sections, view: redactSecrets({ ...parsed, agent: filled }, secrets), secrets };
}

function firstCgroup2Mount(): string {
  try {
    const line = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[2] === 'cgroup2');
    return line?.split(' ')[1] ?? '/sys/fs/cgroup';
  } catch {
    return '/sys/fs/cgroup';
  }
}
