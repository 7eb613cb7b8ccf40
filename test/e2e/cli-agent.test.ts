import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AgentStatus, PluginStatus } from '@cilia/core';
import { REPO, startAgent, type RunningAgent } from '../support/agent.js';

const CLI = join(REPO, 'node_modules/.bin/cilia');
const cilia = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(CLI, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('cilia CLI against a running agent', () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    agent = await startAgent({ config: { extends: 'standalone', plugins: [join(REPO, 'test/fixtures/plugins/fixture-greeter')], agent: { nodeName: 'cli-e2e' } } });
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('status -o json is the agent status, through CILIA_SOCKET', () => {
    const r = cilia(['status', '-o', 'json'], { CILIA_SOCKET: agent.socket });
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout) as AgentStatus;
    expect(status.node).toBe('cli-e2e');
    expect(status.health).toBe('ok');
    expect(status.plugins.map((p) => `${p.name}:${p.state}`)).toEqual([
      '@cilia/ipam:started',
      '@cilia/kvstore:started',
      '@cilia/datapath-ipcache:started',
      '@cilia/nodes:started',
      '@cilia/resources:started',
      '@cilia/identity:started',
      '@cilia/policy:started',
      '@cilia/datapath:started',
      '@cilia/nodes-sync:started',
      '@cilia/pod-endpoints:started',
      '@cilia/flow:started',
      'fixture-greeter:started',
    ]);
  });

  it('status as a table names the node, health and every plugin', () => {
    const r = cilia(['status', '--socket', agent.socket]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Node:\s+cli-e2e/);
    expect(r.stdout).toMatch(/Health:\s+ok/);
    expect(r.stdout).toMatch(/^\s*fixture-greeter\s+0\.0\.1\s+configured\s+started\s*$/m);
    expect(r.stdout).toMatch(/^\s*@cilia\/ipam\s+\S+\s+default\s+started\s*$/m);
  });

  it('plugin list -o yaml and config view', () => {
    const plugins = parse(cilia(['plugin', 'list', '-o', 'yaml', '--socket', agent.socket]).stdout) as PluginStatus[];
    expect(plugins.find((p) => p.name === '@cilia/ipam')?.provides).toEqual(['cilia.Ipam']);
    const view = cilia(['config', 'view', '--socket', agent.socket]);
    expect(view.code).toBe(0);
    const config = parse(view.stdout) as { agent: { nodeName: string }; 'fixture-greeter': { greeting: string } };
    expect(config.agent.nodeName).toBe('cli-e2e');
    expect(config['fixture-greeter'].greeting).toBe('hello');
  });

  it('says which socket it tried when no agent answers', () => {
    const r = cilia(['status', '--socket', join(agent.dir, 'nobody.sock')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`cilia: cannot reach the agent at ${join(agent.dir, 'nobody.sock')}: no such socket (is cilia-agent running?)`);
  });
});
