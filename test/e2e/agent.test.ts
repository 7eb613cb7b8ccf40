import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { api, apiGet, REPO, runAgent, startAgent, testPinRoot, type RunningAgent } from '../support/agent.js';

const fx = (name: string) => join(REPO, 'test/fixtures/plugins', name);

/** Writes a config into a fresh temp dir and runs the agent on it to completion. */
async function refused(config: Record<string, unknown> | string) {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-refused-'));
  try {
    const file = join(dir, 'agent.yaml');
    const base = { agent: { apiSocket: join(dir, 'sock'), metricsAddress: '', bpfRoot: testPinRoot(dir), stateDir: join(dir, 'state') } };
    writeFileSync(file, typeof config === 'string' ? config : stringify({ ...base, ...config, agent: { ...base.agent, ...((config.agent as object) ?? {}) } }));
    const result = await runAgent(['--config', file]);
    expect(existsSync(join(dir, 'sock')), 'a refused agent must not serve its API').toBe(false);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(testPinRoot(dir), { recursive: true, force: true });
  }
}

/** The JSON log lines an agent printed. */
const logLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('cilia-agent lifecycle', () => {
  let agent: RunningAgent | undefined;
  afterEach(async () => {
    await agent?.stop('SIGKILL');
    agent = undefined;
  });

  it('starts plugins in dependency order, reports them, and stops in reverse on SIGINT', async () => {
    // Listed consumer-first: the agent must still start the provider first.
    agent = await startAgent({ config: { extends: 'standalone', plugins: [fx('fixture-consumer'), fx('fixture-greeter')], 'fixture-greeter': { greeting: 'ahoy' } } });
    const status = await agent.status();
    expect(status.health).toBe('ok');
    expect(status.bpf?.bpffs).toEqual({ mounted: true, path: testPinRoot(agent.dir) });
    expect(status.bpf?.supported).toEqual(expect.arrayContaining(['lpm_trie', 'ringbuf', 'prog:sched_cls']));
    expect(existsSync(testPinRoot(agent.dir))).toBe(true);
    expect(status.plugins.map((p) => [p.name, p.origin, p.state])).toEqual([
      ['@cilia/ipam', 'default', 'started'],
      ['@cilia/kvstore', 'default', 'started'],
      ['@cilia/datapath-ipcache', 'default', 'started'],
      ['@cilia/nodes', 'default', 'started'],
      ['@cilia/resources', 'default', 'started'],
      ['@cilia/identity', 'default', 'started'],
      ['@cilia/policy', 'default', 'started'],
      ['@cilia/datapath', 'default', 'started'],
      ['@cilia/nodes-sync', 'default', 'started'],
      ['@cilia/pod-endpoints', 'default', 'started'],
      ['@cilia/flow', 'default', 'started'],
      ['fixture-greeter', 'configured', 'started'],
      ['fixture-consumer', 'configured', 'started'],
    ]);
    expect(status.plugins[12]).toMatchObject({ version: '0.0.2', origin: 'configured', requires: ['fixture.Greeter'] });

    const config = await apiGet<{ sources: string[]; config: Record<string, Record<string, unknown>> }>(agent.socket, '/v1/config');
    expect(config.body.sources[0]).toMatch(/presets\/standalone\.yaml$/);
    expect(config.body.config['fixture-greeter']).toEqual({ greeting: 'ahoy', failStart: false, hangStop: false });
    expect(config.body.config['fixture-consumer']).toEqual({ failStart: false });
    expect(config.body.config.ipam).toEqual({ podCIDRs: ['10.200.0.0/24'] });

    const missing = await apiGet<{ error: string }>(agent.socket, '/v1/nope');
    expect(missing.status).toBe(404);
    const openapi = await apiGet<{ openapi: string; paths: Record<string, unknown> }>(agent.socket, '/v1/openapi.json');
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/status', '/v1/endpoints/{id}', '/v1/policy/trace']));
    expect(missing.body.error).toContain('/v1/nope');

    const socket = agent.socket;
    const result = await agent.stop('SIGINT');
    agent = undefined;
    expect(result.code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const lines = logLines(result.stdout);
    const said = lines.find((l) => l.subsys === 'fixture-consumer' && l.event === 'fixture-start');
    expect(said?.said).toBe('ahoy, consumer');
    expect(lines.filter((l) => l.event === 'fixture-stop').map((l) => l.subsys)).toEqual(['fixture-consumer', 'fixture-greeter']);
    expect(lines.every((l) => typeof l.subsys === 'string')).toBe(true);
    // One subsys per line: a plugin's child logger does not stack on the agent's.
    expect(result.stdout.split('\n').filter((l) => (l.match(/"subsys"/g) ?? []).length > 1)).toEqual([]);
  });

  it('stops the plugins that started, in reverse, when a later start fails (exit 1)', async () => {
    const result = await refused({ plugins: [fx('fixture-greeter'), fx('fixture-consumer')], 'fixture-consumer': { failStart: true } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('fixture-consumer failed to start: consumer refuses to start');
    const stops = logLines(result.stdout).filter((l) => l.event === 'fixture-stop').map((l) => l.subsys);
    expect(stops).toEqual(['fixture-greeter']);
  });

  it('bounds shutdown when a plugin never finishes stopping', async () => {
    agent = await startAgent({
      config: { plugins: [fx('fixture-greeter'), fx('fixture-consumer')], agent: { shutdownTimeoutMs: 300 }, 'fixture-greeter': { hangStop: true } },
    });
    const t0 = Date.now();
    const result = await agent.stop('SIGTERM');
    agent = undefined;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(result.code).toBe(1);
    const lines = logLines(result.stdout);
    expect(lines.find((l) => l.msg === 'plugin did not stop within the shutdown budget')?.plugin).toBe('fixture-greeter');
    // The consumer (stopped first, in reverse order) still stopped cleanly.
    expect(lines.filter((l) => l.event === 'fixture-stop').map((l) => l.subsys)).toEqual(['fixture-consumer', 'fixture-greeter']);
  });

  it('serves Prometheus metrics on the configured address', async () => {
    agent = await startAgent({ config: { plugins: [fx('fixture-greeter')], agent: { metricsAddress: '127.0.0.1:0' } } });
    const listening = logLines(agent.output()).find((l) => l.msg === 'agent API listening');
    const address = listening?.metrics as string;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    const body = await (await fetch(`http://${address}/metrics`)).text();
    expect(body).toContain('cilia_plugin_up{plugin="fixture-greeter",state="started"} 1');
    expect(body).toMatch(/cilia_agent_info\{version="[^"]+",node="[^"]+"\} 1/);
  });

  it('lets a plugin replace a default provider it declares in replaces', async () => {
    agent = await startAgent({ config: { plugins: [fx('fixture-cloud-ipam')] } });
    const status = await agent.status();
    expect(status.plugins.map((p) => [p.name, p.origin, p.state])).toEqual([
      ['@cilia/kvstore', 'default', 'started'],
      ['@cilia/datapath-ipcache', 'default', 'started'],
      ['@cilia/resources', 'default', 'started'],
      ['@cilia/identity', 'default', 'started'],
      ['@cilia/policy', 'default', 'started'],
      ['fixture-cloud-ipam', 'configured', 'started'],
      ['@cilia/nodes', 'default', 'started'],
      ['@cilia/datapath', 'default', 'started'],
      ['@cilia/nodes-sync', 'default', 'started'],
      ['@cilia/pod-endpoints', 'default', 'started'],
      ['@cilia/flow', 'default', 'started'],
    ]);
    const started = logLines(agent.output()).find((l) => l.event === 'fixture-start');
    expect(started?.lease).toBe('192.0.2.10');
    // The default's section is gone with it.
    const cfg = await apiGet<{ config: Record<string, unknown> }>(agent.socket, '/v1/config');
    expect(cfg.body.config).not.toHaveProperty('ipam');
  });

  it('serves API routes that plugins contribute, with field-level errors', async () => {
    agent = await startAgent({ config: { plugins: [fx('fixture-routes'), fx('fixture-greeter')] } });
    expect((await apiGet<{ said: string }>(agent.socket, '/v1/greetings/world')).body).toEqual({ said: 'hello, world' });
    const post = (body: string) =>
      api(agent!.socket, 'POST', '/v1/greetings', body);
    expect(await post('{"who":"api"}')).toEqual({ status: 201, body: { said: 'hello, api' } });
    expect(await post('{"who":5}')).toEqual({ status: 400, body: { error: 'expected a string', path: 'who' } });
  });

  it('refuses to take over an API socket another agent serves', async () => {
    agent = await startAgent({ config: {} });
    const second = await runAgent(['--config', agent.configFile]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another process is serving the API socket ${agent.socket}`);
    expect((await agent.status()).health).toBe('ok');
  });
});

describe('cilia-agent refuses bad config with exit code 2, naming the key and reason', () => {
  it.each([
    ['an unknown key', { agent: { bogus: 1 } }, ['agent.bogus', 'unknown key']],
    ['a wrong type', { agent: { shutdownTimeoutMs: 'soon' } }, ['agent.shutdownTimeoutMs', 'expected number']],
    ['a bad enum value', { agent: { logLevel: 'loud' } }, ['agent.logLevel']],
    ['a malformed metrics address', { agent: { metricsAddress: 'nowhere' } }, ['agent.metricsAddress', 'host:port']],
    ['a section no plugin owns', { 'overlay-vxlan': { port: 1 } }, ['overlay-vxlan', 'unknown key']],
    ['a wrong type in a plugin section', { plugins: [fx('fixture-greeter')], 'fixture-greeter': { greeting: 5 } }, ['fixture-greeter.greeting', 'expected string']],
    ['an unknown key in a plugin section', { plugins: [fx('fixture-greeter')], 'fixture-greeter': { colour: 'red' } }, ['fixture-greeter.colour', 'unknown key']],
    ['a plugin list that is not a list', { plugins: 'fixture-greeter' }, ['plugins', 'expected array']],
    ['an unknown preset', { extends: 'no-such-preset' }, ['extends', 'no-such-preset']],
  ])('%s', async (_what, config, needles) => {
    const result = await refused(config);
    expect(result.code).toBe(2);
    for (const n of needles) expect(result.stderr).toContain(n);
    expect(result.stderr.startsWith('cilia-agent: invalid ')).toBe(true);
  });

  it('a YAML syntax error, with its line', async () => {
    const result = await refused('agent:\n  apiSocket: [unclosed\n');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line \d+, column \d+/);
  });

  it('an extends cycle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-cycle-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'extends: ./b.yaml\n');
      writeFileSync(join(dir, 'b.yaml'), 'extends: ./a.yaml\n');
      const result = await runAgent(['--config', join(dir, 'a.yaml')]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('cycle');
      expect(result.stderr).toContain('b.yaml');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing --config, and an unknown flag', async () => {
    expect((await runAgent([])).code).toBe(2);
    const bad = await runAgent(['--config', 'x.yaml', '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--frobnicate');
  });
});

describe('cilia-agent refuses a bad plugin set with exit code 2, naming plugins and tokens', () => {
  it.each([
    ['a plugin that does not resolve', ['cilia-plugin-does-not-exist'], ['cilia-plugin-does-not-exist', 'does not resolve']],
    ['an apiVersion mismatch', [fx('fixture-api-v2')], ['fixture-api-v2', 'apiVersion ^2', '@cilia/core 1.3.0']],
    ['a required token with no provider', [fx('fixture-needs-missing')], ['fixture-needs-missing', 'requires fixture.Missing', 'no plugin']],
    ['two providers of a single-provider token', [fx('fixture-greeter'), fx('fixture-greeter-2')], ['fixture.Greeter', 'fixture-greeter and fixture-greeter-2']],
    ['a dependency cycle', [fx('fixture-cycle-x'), fx('fixture-cycle-y')], ['dependency cycle', 'fixture-cycle-x needs fixture.Y from fixture-cycle-y', 'fixture-cycle-y needs fixture.X from fixture-cycle-x']],
    ['a second Ipam provider that does not declare replaces', [fx('fixture-rogue-ipam')], ['cilia.Ipam has more than one provider: @cilia/ipam and fixture-rogue-ipam', 'list cilia.Ipam in replaces']],
    ['the same plugin twice under two names', [fx('fixture-greeter'), fx('fixture-greeter') + '/index.js'], ['fixture-greeter is listed twice']],
  ])('%s', async (_what, plugins, needles) => {
    const result = await refused({ plugins });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('refusing the plugin set');
    for (const n of needles) expect(result.stderr).toContain(n);
  });
});
