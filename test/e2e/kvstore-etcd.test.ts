import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '@cilia/plugin-kvstore-etcd/testing';
import { apiGet, REPO, startAgent, type RunningAgent } from '../support/agent.js';

describe('agent with @cilia/plugin-kvstore-etcd', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await EtcdServer.start();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('starts the plugin in place of the embedded KvStore', async () => {
    let agent: RunningAgent | undefined;
    try {
      agent = await startAgent({ config: { plugins: ['@cilia/plugin-kvstore-etcd'], 'kvstore-etcd': { endpoints: [etcd.endpoint], keyPrefix: '/agent-test' } } });
      const status = await agent.status();
      const names = status.plugins.map((p) => p.name);
      expect(names).not.toContain('@cilia/kvstore');
      expect(status.plugins.find((p) => p.name === '@cilia/plugin-kvstore-etcd')).toMatchObject({ origin: 'configured', state: 'started', provides: ['cilia.KvStore'] });
      expect(status.plugins.filter((p) => p.provides.includes('cilia.KvStore')).map((p) => p.name)).toEqual(['@cilia/plugin-kvstore-etcd']);
      const cfg = await apiGet<{ config: Record<string, unknown> }>(agent.socket, '/v1/config');
      expect(cfg.body.config).not.toHaveProperty('kvstore');
      expect(cfg.body.config['kvstore-etcd']).toMatchObject({ endpoints: [etcd.endpoint], keyPrefix: '/agent-test' });
      expect(agent.output()).toContain('connected to etcd');
      // The embedded store never opened its files.
      expect(existsSync(join(agent.dir, 'state', 'kvstore'))).toBe(false);
    } finally {
      await agent?.stop();
    }
  });

  it('never shows an inline password: /v1/config, cilia config view and the log say [redacted]', async () => {
    const password = `pw-${process.pid}-${Date.now()}`;
    const secured = await EtcdServer.start();
    let agent: RunningAgent | undefined;
    try {
      await secured.enableAuth(password);
      agent = await startAgent({
        config: {
          plugins: ['@cilia/plugin-kvstore-etcd'],
          agent: { logLevel: 'debug' },
          'kvstore-etcd': { endpoints: [secured.endpoint], keyPrefix: '/secret-test', auth: { username: 'root', password } },
        },
      });
      // Connected with it: the password did reach etcd.
      expect(agent.output()).toContain('connected to etcd');
      const cfg = await apiGet<{ config: Record<string, { auth?: unknown }> }>(agent.socket, '/v1/config');
      expect(cfg.body.config['kvstore-etcd']!.auth).toEqual({ username: 'root', password: '[redacted]' });
      const view = spawnSync(join(REPO, 'node_modules/.bin/cilia'), ['config', 'view', '-o', 'json'], { encoding: 'utf8', env: { ...process.env, CILIA_SOCKET: agent.socket } });
      expect(view.status, view.stderr).toBe(0);
      expect(view.stdout).toContain('[redacted]');
      expect(view.stdout).not.toContain(password);
      expect(agent.output()).toContain('effective config (secrets redacted)');
      expect(agent.output()).not.toContain(password);
    } finally {
      await agent?.stop();
      await secured.stop();
    }
  });

  it('refuses a bad kvstore-etcd section, naming the key', async () => {
    await expect(startAgent({ config: { plugins: ['@cilia/plugin-kvstore-etcd'], 'kvstore-etcd': { endpoints: ['ftp://nope'] } } })).rejects.toThrow(/kvstore-etcd\.endpoints\[0\]/);
  });
});
