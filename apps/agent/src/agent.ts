import { readFileSync } from 'node:fs';
import {
  ConfigError,
  CORE_API_VERSION,
  PluginHost,
  resolvePluginSet,
  Tokens,
  type AgentStatus,
  type BpfFeatures,
  type Health,
  type Logger,
  type MetricsCollector,
  type PluginCandidate,
  type ResolvedPluginSet,
} from '@cilia/core';
import { ensureBpffs, probeFeatures } from '@cilia/bpf';
import pkg from '../package.json' with { type: 'json' };
import type { RouteDescription } from './api/openapi.js';
import { ApiServer, BUILTIN_ROUTES } from './api/server.js';
import { defaultPlugins } from './builtin.js';
import { pluginSpecifiers, validateConfig, type EffectiveConfig } from './config/compose.js';
import { loadConfigDocument, type ConfigDocument } from './config/document.js';
import { createLogger } from './logging.js';
import { AgentMetrics } from './metrics.js';
import { serviceMetricsCollector } from './service-metrics.js';
import { loadPlugins } from './plugin-loader.js';

/** The agent's version (its package version). */
export const AGENT_VERSION: string = pkg.version;

/** Everything checked before anything starts. Throws ConfigError or PluginSetError (exit code 2). */
export interface PreparedAgent {
  readonly document: ConfigDocument;
  readonly config: EffectiveConfig;
  /** The plugins that will run, in start order (defaults taken over by a plugin are gone). */
  readonly set: ResolvedPluginSet;
  /** The gid owning the API socket (`agent.apiSocketGroup`), when one is set. */
  readonly socketGid?: number;
}

/** Reads the config, loads and resolves the plugin set, validates every section. No side effects. */
export async function prepareAgent(configFile: string): Promise<PreparedAgent> {
  const document = loadConfigDocument(configFile);
  const loaded = await loadPlugins(pluginSpecifiers(document), document.file);
  const candidates: PluginCandidate[] = [
    ...defaultPlugins(),
    ...loaded.map((l) => ({ definition: l.definition, origin: 'configured' as const })),
  ];
  // Resolution first: its message names plugins and tokens, which matters more than a section.
  const set = resolvePluginSet(candidates, { coreVersion: CORE_API_VERSION, hostTokens: HOST_TOKENS });
  const config = validateConfig(
    document,
    set.order.map((c) => c.definition),
  );
  const socketGid = socketGroup(config.agent.apiSocketGroup);
  return { document, config, set, ...(socketGid !== undefined ? { socketGid } : {}) };
}

const HOST_TOKENS = [Tokens.Logger, Tokens.AgentConfig, Tokens.Lifecycle];

/**
 * Every route a prepared agent would serve — its own and its plugins' — without starting
 * anything: the plugins register, and only their route lists are built (handlers reach their
 * services lazily). For the API reference.
 */
export function describeApi(prepared: PreparedAgent): RouteDescription[] {
  const quiet: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => quiet };
  const host = new PluginHost({ set: prepared.set, agent: prepared.config.agent, logger: quiet, sections: prepared.config.sections });
  return [...BUILTIN_ROUTES, ...host.resolver().getAll(Tokens.ApiRoutes).flat()];
}

/** A running agent: plugins, API socket, metrics. */
export class Agent {
  readonly #prepared: PreparedAgent;
  readonly #log: Logger & { flush(): void };
  readonly #bpfLog: Logger;
  readonly #host: PluginHost;
  readonly #api: ApiServer;
  readonly #metrics: AgentMetrics;
  readonly #startedAt = new Date();
  #health: Health = 'starting';
  #problems: string[] = [];
  #bpf?: BpfFeatures;
  #collectors?: readonly MetricsCollector[];

  constructor(prepared: PreparedAgent) {
    this.#prepared = prepared;
    const { agent } = prepared.config;
    const root = createLogger(agent.logLevel, agent.logFile, prepared.config.secrets);
    this.#log = root.child({ subsys: 'agent' }) as Logger & { flush(): void };
    this.#bpfLog = root.child({ subsys: 'bpf' });
    this.#host = new PluginHost({ set: prepared.set, agent, logger: root, sections: prepared.config.sections });
    this.#metrics = new AgentMetrics({ version: AGENT_VERSION, node: agent.nodeName }, () => this.#host.status(), {
      logger: root.child({ subsys: 'metrics' }),
      collectors: () => this.#metricsCollectors(),
      health: () => this.status(),
      pages: () => (this.#health === 'ok' || this.#health === 'degraded' ? this.#host.resolver().getAll(Tokens.WebPages) : undefined),
    });
    this.#api = new ApiServer(
      {
        status: () => this.status(),
        plugins: () => this.#host.status(),
        config: () => ({ sources: prepared.document.sources, config: prepared.config.view }),
        metrics: () => this.#metrics.families(),
      },
      { version: AGENT_VERSION },
    );
  }

  get logger(): Logger {
    return this.#log;
  }

  /** Serves the API, then starts plugins in dependency order. A failed start stops the rest and rethrows. */
  async start(): Promise<{ socket: string; metrics: string }> {
    const { agent } = this.#prepared.config;
    this.#bpf = this.#checkBpf(agent.bpfRoot);
    this.#api.addRoutes(this.#host.resolver().getAll(Tokens.ApiRoutes).flat(), () => this.#health === 'ok' || this.#health === 'degraded');
    await this.#api.listen(agent.apiSocket, this.#prepared.socketGid);
    const metrics = agent.metricsAddress === '' ? '' : await this.#metrics.listen(agent.metricsAddress);
    this.#log.info(
      { socket: agent.apiSocket, metrics, node: agent.nodeName, config: this.#prepared.document.sources },
      'agent API listening',
    );
    this.#log.debug({ effective: this.#prepared.config.view }, 'effective config (secrets redacted)');
    try {
      await this.#host.start();
    } catch (err) {
      this.#health = 'failed';
      this.#problems.push((err as Error).message);
      await this.#closeServers();
      throw err;
    }
    this.#health = this.#problems.length === 0 ? 'ok' : 'degraded';
    this.#log.info({ plugins: this.#host.status().map((p) => `${p.name}@${p.version}`) }, 'agent ready');
    return { socket: agent.apiSocket, metrics };
  }

  /** Stops plugins in reverse within the shutdown budget, then the API (removing its socket). */
  async stop(): Promise<boolean> {
    this.#health = 'stopping';
    const report = await this.#host.stop();
    for (const name of report.timedOut) this.#log.error({ plugin: name }, 'plugin did not stop within the shutdown budget');
    for (const f of report.failed) this.#log.error({ plugin: f.name, err: f.error }, 'plugin failed to stop');
    await this.#closeServers();
    this.#log.info('agent stopped');
    this.#log.flush();
    return report.timedOut.length === 0 && report.failed.length === 0;
  }

  status(): AgentStatus {
    const uptime = (Date.now() - this.#startedAt.getTime()) / 1000;
    const problems = [...this.#problems, ...this.#reportedProblems()];
    const health: Health = this.#health === 'ok' && problems.length > 0 ? 'degraded' : this.#health;
    return {
      version: AGENT_VERSION,
      apiVersion: CORE_API_VERSION,
      node: this.#prepared.config.agent.nodeName,
      uptimeSeconds: Math.round(uptime * 1000) / 1000,
      startedAt: this.#startedAt.toISOString(),
      health,
      problems,
      ...this.#reportedNotes(),
      plugins: this.#host.status(),
      ...(this.#bpf ? { bpf: this.#bpf } : {}),
    };
  }

  /** Problems the running plugins report; none before they have started. */
  #reportedProblems(): string[] {
    if (this.#health !== 'ok' && this.#health !== 'degraded') return [];
    return this.#host
      .resolver()
      .getAll(Tokens.HealthReporters)
      .flatMap((r) => r.problems().map((p) => `${r.name}: ${p}`));
  }

  /** Notes the running plugins report, when there are any. */
  #reportedNotes(): { notes?: string[] } {
    if (this.#health !== 'ok' && this.#health !== 'degraded') return {};
    const notes = this.#host
      .resolver()
      .getAll(Tokens.HealthReporters)
      .flatMap((r) => (r.notes?.() ?? []).map((n) => `${r.name}: ${n}`));
    return notes.length > 0 ? { notes } : {};
  }

  /** The plugins' metrics collectors once they have started: before, they may read nothing yet. */
  #metricsCollectors(): readonly MetricsCollector[] {
    if (this.#health !== 'ok' && this.#health !== 'degraded') return [];
    return (this.#collectors ??= [...this.#host.resolver().getAll(Tokens.MetricsCollectors), serviceMetricsCollector(this.#host.resolver())]);
  }

  /** bpffs mounted and the pin root on it, or no start at all: every datapath pin lives there. */
  #checkBpf(pinRoot: string): BpfFeatures {
    let mounted: boolean;
    try {
      mounted = ensureBpffs(pinRoot).mounted;
    } catch (err) {
      throw new Error(`cannot use agent.bpfRoot ${pinRoot}: ${(err as Error).message}`);
    }
    const features = probeFeatures(pinRoot);
    this.#bpfLog.info({ pinRoot, mountedBpffs: mounted, kernel: features.kernel, missing: features.missing }, 'BPF features probed');
    return features;
  }

  async #closeServers(): Promise<void> {
    await Promise.allSettled([this.#api.close(), this.#metrics.close()]);
  }
}

/** The gid of `agent.apiSocketGroup` (a name from /etc/group or a number); undefined when empty. */
function socketGroup(group: string): number | undefined {
  if (group === '') return undefined;
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === group);
  if (!line) throw new ConfigError([{ path: 'agent.apiSocketGroup', reason: `no group named ${JSON.stringify(group)} in /etc/group` }]);
  return Number(line.split(':')[2]);
}
