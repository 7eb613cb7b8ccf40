import { createServer, type Server } from 'node:http';
import type { PluginStatus } from '@cilia/core';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** The agent's Prometheus registry; plugins' metrics join it in later issues. */
export class AgentMetrics {
  readonly registry = new Registry();
  #server?: Server;

  constructor(info: { version: string; node: string }, plugins: () => readonly PluginStatus[]) {
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
  }

  /** Serves `/metrics` on `host:port`. */
  async listen(address: string): Promise<string> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i) || '0.0.0.0';
    const port = Number(address.slice(i + 1));
    this.#server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
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

  async close(): Promise<void> {
    if (this.#server) await new Promise((resolve) => this.#server!.close(resolve));
  }
}
