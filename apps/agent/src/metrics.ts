import { createServer, type Server, type ServerResponse } from 'node:http';
import type { MetricFamilyView } from '@cilia/api-client';
import type { Health, Logger, MetricFamily, MetricsCollector, PluginStatus, WebPage } from '@cilia/core';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import { exposedValues, familyProblem, type ExposedValue } from './metric-families.js';

/** How long one collector may take before its scrape is given up on (it is logged as failed). */
export const COLLECT_TIMEOUT_MS = 5000;

export interface AgentMetricsOptions {
  readonly logger: Logger;
  /** The plugins' collectors; empty until they have started. */
  readonly collectors: () => readonly MetricsCollector[];
  /** Default {@link COLLECT_TIMEOUT_MS}. */
  readonly collectTimeoutMs?: number;
  /** The agent's health for `/healthz` (as `GET /v1/status` has it); without it `/healthz` is 404. */
  readonly health?: () => { health: Health; problems: readonly string[] };
  /** The plugins' pages (`Tokens.WebPages`); undefined until they have started (503). */
  readonly pages?: () => readonly WebPage[] | undefined;
}

/**
 * A family of some collector as prom-client's registry sees it: a metric whose `get` returns
 * what the last scrape collected (nothing when its collector failed or stopped reporting it).
 */
class CollectedFamily {
  name: string;
  help: string;
  type: MetricFamily['type'];
  readonly aggregator = 'sum';
  #values: ExposedValue[] = [];

  constructor(family: MetricFamily) {
    this.name = family.name;
    this.help = family.help;
    this.type = family.type;
  }

  update(family: MetricFamily): void {
    this.help = family.help;
    this.type = family.type;
    this.#values = exposedValues(family);
  }

  clear(): void {
    this.#values = [];
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: ExposedValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#values };
  }
}

/** The agent's Prometheus registry: its own metrics and every plugin's `MetricsCollector`. */
export class AgentMetrics {
  readonly registry = new Registry();
  #server?: Server;
  readonly #log: Logger;
  readonly #collectors: () => readonly MetricsCollector[];
  readonly #timeoutMs: number;
  readonly #health: AgentMetricsOptions['health'];
  readonly #pages: () => readonly WebPage[] | undefined;
  readonly #families = new Map<string, CollectedFamily>();
  readonly #collectorErrors: Counter<'collector'>;
  /** The problem last logged per collector, so a lasting failure is logged once, not every scrape. */
  readonly #lastProblem = new Map<string, string>();
  #collecting?: Promise<void>;

  constructor(info: { version: string; node: string }, plugins: () => readonly PluginStatus[], options: AgentMetricsOptions) {
    this.#log = options.logger;
    this.#collectors = options.collectors;
    this.#timeoutMs = options.collectTimeoutMs ?? COLLECT_TIMEOUT_MS;
    this.#health = options.health;
    this.#pages = options.pages ?? (() => []);
    collectDefaultMetrics({ register: this.registry, prefix: 'cilia_agent_' });
    new Gauge({ name: 'cilia_agent_info', help: 'Agent version and node', labelNames: ['version', 'node'], registers: [this.registry] })
      .labels(info.version, info.node)
      .set(1);
    new Gauge({
      name: 'cilia_plugin_up',
      help: '1 when the plugin has started, 0 otherwise',
      labelNames: ['plugin', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const p of plugins()) this.labels(p.name, p.state).set(p.state === 'started' ? 1 : 0);
      },
    });
    this.#collectorErrors = new Counter({
      name: 'cilia_agent_metrics_collector_errors_total',
      help: 'Scrapes in which a plugin\'s metrics collector failed or returned an invalid family',
      labelNames: ['collector'],
      registers: [this.registry],
    });
  }

  /** Every metric in the exposition format, the collectors' families collected first. */
  async metrics(): Promise<string> {
    await this.#collectShared();
    return this.registry.metrics();
  }

  /** The same metrics as JSON, for `GET /v1/metrics` (`cilia metrics list`). */
  async families(): Promise<MetricFamilyView[]> {
    await this.#collectShared();
    const metrics = await this.registry.getMetricsAsJSON();
    return metrics.map((m) => ({
      name: m.name,
      help: m.help,
      type: String(m.type),
      samples: m.values.map((v) => ({ name: (v as { metricName?: string }).metricName ?? m.name, labels: { ...v.labels } as Record<string, string | number>, value: v.value })),
    }));
  }

  /** Scrapes arriving together share one collection. */
  #collectShared(): Promise<void> {
    this.#collecting ??= this.#collect().finally(() => (this.#collecting = undefined));
    return this.#collecting;
  }

  async #collect(): Promise<void> {
    const collectors = this.#collectors();
    const results = await Promise.all(collectors.map((c) => this.#collectOne(c)));
    const current = new Set<string>();
    collectors.forEach((collector, i) => {
      const families = results[i];
      if (!families) return;
      const problems: string[] = [];
      families.forEach((family, j) => {
        const problem = familyProblem(family, `families[${j}]`) ?? this.#nameTaken(family.name, current, `families[${j}]`);
        if (problem) {
          problems.push(problem);
          return;
        }
        current.add(family.name);
        let registered = this.#families.get(family.name);
        if (!registered) {
          registered = new CollectedFamily(family);
          this.#families.set(family.name, registered);
          // prom-client formats any registered object with a name, help, type and get().
          this.registry.registerMetric(registered as unknown as Metric);
        }
        registered.update(family);
      });
      this.#report(collector.name, problems.length > 0 ? `invalid metric families (left out): ${problems.join('; ')}` : undefined);
    });
    for (const [name, family] of this.#families) if (!current.has(name)) family.clear();
  }

  /** A collector's families, or undefined (logged, counted) when it throws or times out. */
  async #collectOne(collector: MetricsCollector): Promise<readonly MetricFamily[] | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      });
      const families = await Promise.race([Promise.resolve().then(() => collector.collect()), timeout]);
      if (!Array.isArray(families)) throw new Error(`collect() returned ${typeof families}, not an array of metric families`);
      return families;
    } catch (err) {
      this.#report(collector.name, `collect failed (its metrics are left out of this scrape): ${(err as Error)?.message ?? String(err)}`);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  #nameTaken(name: string, current: ReadonlySet<string>, path: string): string | undefined {
    if (current.has(name)) return `${path}.name: ${name} is also collected by another collector or earlier in this one`;
    const existing = this.registry.getSingleMetric(name);
    if (existing && !(existing instanceof CollectedFamily)) return `${path}.name: ${name} is one of the agent's own metrics`;
    return undefined;
  }

  /** Counts a collector's failure and logs it when it is new; logs the recovery once. */
  #report(collector: string, problem: string | undefined): void {
    const last = this.#lastProblem.get(collector);
    if (problem === undefined) {
      if (last === undefined) return;
      this.#lastProblem.delete(collector);
      this.#log.info({ collector }, 'metrics collector works again');
      return;
    }
    this.#collectorErrors.labels(collector).inc();
    if (problem === last) return;
    this.#lastProblem.set(collector, problem);
    this.#log.error({ collector, problem }, `metrics collector ${collector}: ${problem}`);
  }

  /**
   * Serves `/metrics` and `/healthz` on `host:port`. `/healthz` is for probes: 200 when the
   * agent's health is `ok`, 503 otherwise, with `{ health, problems }` as JSON either way.
   */
  async listen(address: string): Promise<string> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i) || '0.0.0.0';
    const port = Number(address.slice(i + 1));
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://agent');
      if (url.pathname === '/healthz' && this.#health) {
        const { health, problems } = this.#health();
        res.writeHead(health === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ health, problems }) + '\n');
        return;
      }
      if (url.pathname !== '/metrics') {
        this.#page(url, res);
        return;
      }
      this.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject).listen(port, host, () => resolve());
    });
    const bound = this.#server.address();
    return typeof bound === 'object' && bound ? `${host}:${bound.port}` : address;
  }

  /** A plugin's page (`Tokens.WebPages`), or 404. */
  #page(url: URL, res: ServerResponse): void {
    const pages = this.#pages();
    if (pages === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('the agent is starting or stopping; try again\n');
      return;
    }
    const page = pages.find((p) => p.path === url.pathname);
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such page: ${url.pathname}\n`);
      return;
    }
    Promise.resolve()
      .then(() => page.render(Object.fromEntries(url.searchParams)))
      .then(
        (body) => res.writeHead(200, { 'content-type': page.contentType }).end(body),
        (err: Error & { status?: number; path?: string }) => {
          // Compared by name: a plugin may carry its own copy of @cilia/core.
          const status = err?.name === 'ApiRequestError' ? (err.status ?? 400) : 500;
          res.writeHead(status, { 'content-type': 'text/plain' }).end(`${err.path ? `${err.path}: ` : ''}${err.message}\n`);
        },
      );
  }

  async close(): Promise<void> {
    if (this.#server) await new Promise((resolve) => this.#server!.close(resolve));
  }
}
