import { ApiRequestError, HistogramRecorder, type Logger, type MetricFamily, type MetricsCollector, type WebPage } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from './metrics.js';

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown> | string, msg?: string): void =>
      void lines.push(typeof fields === 'string' ? { level, fields: {}, msg: fields } : { level, fields, msg });
  const logger: Logger = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => logger };
  return logger;
}

function setup(collectors: MetricsCollector[], collectTimeoutMs?: number) {
  const lines: Line[] = [];
  const metrics = new AgentMetrics({ version: '0.0.0', node: 'n1' }, () => [], {
    logger: recordingLogger(lines),
    collectors: () => collectors,
    ...(collectTimeoutMs !== undefined ? { collectTimeoutMs } : {}),
  });
  return { metrics, lines, errors: () => lines.filter((l) => l.level === 'error') };
}

const fixed = (name: string, families: MetricFamily[]): MetricsCollector => ({ name, collect: () => families });
const gauge = (name: string, value: number, labels?: Record<string, string>): MetricFamily => ({ name, help: `help of ${name}`, type: 'gauge', samples: [{ ...(labels ? { labels } : {}), value }] });

describe('AgentMetrics with plugin collectors', () => {
  it('serves counters, gauges and pre-bucketed histograms of every collector in the exposition format', async () => {
    const delay = new HistogramRecorder([0.01, 0.1]);
    for (const v of [0.005, 0.05, 0.05, 3]) delay.observe(v);
    const { metrics, errors } = setup([
      fixed('a', [
        { name: 'cilia_drop_count_total', help: 'Packets dropped', type: 'counter', samples: [{ labels: { reason: 'Policy denied', direction: 'INGRESS' }, value: 7 }] },
        gauge('cilia_endpoint', 2),
      ]),
      { name: 'b', collect: async () => [{ name: 'cilia_policy_implementation_delay_seconds', help: 'Delay', type: 'histogram', samples: [delay.sample()] }] },
    ]);
    const text = await metrics.metrics();
    expect(text).toContain('# TYPE cilia_drop_count_total counter');
    expect(text).toContain('cilia_drop_count_total{reason="Policy denied",direction="INGRESS"} 7');
    expect(text).toContain('# HELP cilia_endpoint help of cilia_endpoint');
    expect(text).toContain('cilia_endpoint 2');
    expect(text).toContain('# TYPE cilia_policy_implementation_delay_seconds histogram');
    for (const line of [
      'cilia_policy_implementation_delay_seconds_bucket{le="0.01"} 1',
      'cilia_policy_implementation_delay_seconds_bucket{le="0.1"} 3',
      'cilia_policy_implementation_delay_seconds_bucket{le="+Inf"} 4',
      'cilia_policy_implementation_delay_seconds_sum 3.105',
      'cilia_policy_implementation_delay_seconds_count 4',
    ]) {
      expect(text).toContain(line);
    }
    // The agent's own metrics stay.
    expect(text).toContain('cilia_agent_info{version="0.0.0",node="n1"} 1');
    expect(errors()).toEqual([]);
  });

  it('logs a throwing collector once while it keeps failing, counts every failed scrape, serves the others, and logs its recovery', async () => {
    let fail = true;
    const { metrics, lines, errors } = setup([
      {
        name: '@x/broken',
        collect: () => {
          if (fail) throw new Error('map gone');
          return [gauge('cilia_x', 1)];
        },
      },
      fixed('ok', [gauge('cilia_ok', 5)]),
    ]);
    const first = await metrics.metrics();
    const second = await metrics.metrics();
    expect(second).toContain('cilia_ok 5');
    expect(first).not.toMatch(/^cilia_x /m);
    expect(second).toContain('cilia_agent_metrics_collector_errors_total{collector="@x/broken"} 2');
    expect(errors()).toHaveLength(1);
    expect(errors()[0]!.fields).toMatchObject({ collector: '@x/broken' });
    expect(errors()[0]!.msg).toContain('map gone');
    fail = false;
    expect(await metrics.metrics()).toMatch(/^cilia_x 1$/m);
    expect(lines.filter((l) => l.level === 'info' && l.fields.collector === '@x/broken')).toHaveLength(1);
  });

  it('gives up on a collector that does not answer in time', async () => {
    const { metrics, errors } = setup([{ name: 'slow', collect: () => new Promise<MetricFamily[]>(() => {}) }, fixed('ok', [gauge('cilia_ok', 1)])], 50);
    expect(await metrics.metrics()).toContain('cilia_ok 1');
    expect(errors()[0]!.msg).toContain('no answer within 50 ms');
  });

  it('leaves out invalid families, naming the field and the reason, and keeps the valid ones of the same collector', async () => {
    const bad: [MetricFamily, string][] = [
      [gauge('node_load', 1), 'families[0].name: "node_load" is not a metric name starting with "cilia_" or "hubble_"'],
      [gauge('cilia_agent_extra', 1), 'families[1].name: cilia_agent_extra: the prefix "cilia_agent_" is the agent\'s own'],
      [{ name: 'cilia_drops', help: 'x', type: 'counter', samples: [{ value: 1 }] }, 'families[2].name: cilia_drops: a counter\'s name ends in "_total"'],
      [{ name: 'cilia_neg_total', help: 'x', type: 'counter', samples: [{ value: -1 }] }, 'families[3].samples[0].value: -1: a counter is finite and not negative'],
      [{ name: 'cilia_dup', help: 'x', type: 'gauge', samples: [{ labels: { a: '1' }, value: 1 }, { labels: { a: '1' }, value: 2 }] }, 'families[4].samples[1].labels: a="1": another sample of cilia_dup has the same labels'],
      [gauge('cilia_lbl', 1, { 'bad-name': 'x' }), 'families[5].samples[0].labels.bad-name: not a label name'],
      [
        { name: 'cilia_h', help: 'x', type: 'histogram', samples: [{ buckets: [[0.1, 3], [1, 2]], sum: 1, count: 3 }] },
        'families[6].samples[0].buckets[1][1]: 2 is less than the count before it (3); counts are cumulative',
      ],
      [{ name: 'cilia_h2', help: 'x', type: 'histogram', samples: [{ labels: { le: '1' }, buckets: [], sum: 0, count: 0 }] }, 'families[7].samples[0].labels.le: reserved for histogram buckets'],
      [gauge('cilia_plugin_up', 1), "families[8].name: cilia_plugin_up is one of the agent's own metrics"],
    ];
    const { metrics, errors } = setup([fixed('mixed', [...bad.map(([f]) => f), gauge('cilia_fine', 3)])]);
    const text = await metrics.metrics();
    expect(text).toContain('cilia_fine 3');
    for (const name of ['node_load', 'cilia_agent_extra', 'cilia_drops', 'cilia_neg_total', 'cilia_dup', 'cilia_lbl', 'cilia_h', 'cilia_h2']) expect(text).not.toContain(`# TYPE ${name} `);
    expect(errors()).toHaveLength(1);
    for (const [, reason] of bad) expect(errors()[0]!.msg).toContain(reason);
  });

  it('refuses a family a second collector also reports; a family no longer reported has no samples', async () => {
    let report = true;
    const { metrics, errors } = setup([
      { name: 'first', collect: () => (report ? [gauge('cilia_shared', 1)] : []) },
      fixed('second', [gauge('cilia_shared', 2)]),
    ]);
    const text = await metrics.metrics();
    expect(text).toMatch(/^cilia_shared 1$/m);
    expect(text).not.toMatch(/^cilia_shared 2$/m);
    expect(errors()[0]!.fields).toMatchObject({ collector: 'second' });
    expect(errors()[0]!.msg).toContain('families[0].name: cilia_shared is also collected by another collector');
    report = false;
    // The second collector's family is now the only one of that name.
    expect(await metrics.metrics()).toMatch(/^cilia_shared 2$/m);
  });
});

describe('AgentMetrics serving plugin pages beside /metrics', () => {
  it('renders a page with its query and content type; 404 for no page, 503 before the plugins started, a refused query its status', async () => {
    let pages: WebPage[] | undefined;
    const metrics = new AgentMetrics({ version: '0.0.0', node: 'n1' }, () => [], {
      logger: recordingLogger([]),
      collectors: () => [],
      pages: () => pages,
    });
    const address = await metrics.listen('127.0.0.1:0');
    try {
      const get = async (path: string) => {
        const r = await fetch(`http://${address}${path}`);
        return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
      };
      expect((await get('/map')).status).toBe(503);
      pages = [
        {
          path: '/map',
          contentType: 'text/html; charset=utf-8',
          render: (q) => {
            if (q['n'] === 'x') throw new ApiRequestError('not a number', 'n');
            return `<p>${q['n'] ?? 'all'}</p>`;
          },
        },
      ];
      expect(await get('/map?n=3')).toEqual({ status: 200, type: 'text/html; charset=utf-8', body: '<p>3</p>' });
      expect(await get('/map?n=x')).toMatchObject({ status: 400, body: 'n: not a number\n' });
      expect(await get('/elsewhere')).toMatchObject({ status: 404, body: 'no such page: /elsewhere\n' });
      expect((await get('/metrics')).body).toContain('cilia_agent_info');
    } finally {
      await metrics.close();
    }
  });
});
