// The operator's toolbox against one running agent: `cilia version`, `cilia status
// --brief|--verbose` and the agent's /healthz while a plugin fails and recovers, and after the
// agent is gone.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startAgent, type RunningAgent } from '../support/agent.js';
import { ciliaRuns } from '../support/cli.js';

const CLI = join(REPO, 'node_modules/.bin/cilia');

describe('cilia toolbox against a running agent', () => {
  let agent: RunningAgent;
  let failFile: string;
  let healthz: string;
  const probe = async () => {
    const r = await fetch(healthz);
    return { status: r.status, body: (await r.json()) as { health: string; problems: string[] } };
  };

  beforeAll(async () => {
    failFile = join(REPO, `node_modules/.cilia-toolbox-fail-${process.pid}`);
    agent = await startAgent({
      config: {
        extends: 'standalone',
        plugins: [join(REPO, 'test/fixtures/plugins/fixture-faulty')],
        agent: { nodeName: 'toolbox-e2e', metricsAddress: '127.0.0.1:0' },
        'fixture-faulty': { failWhenExists: failFile },
      },
    });
    const listening = agent
      .output()
      .split('\n')
      .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; metrics?: string }) : {}))
      .find((l) => l.msg === 'agent API listening');
    healthz = `http://${listening!.metrics}/healthz`;
  });
  afterAll(async () => {
    rmSync(failFile, { force: true });
    await agent?.stop();
  });

  it('status --brief and /healthz follow a plugin that fails and recovers', async () => {
    const [brief, version] = await ciliaRuns([['status', '--brief'], ['version', '-o', 'json']].map((a) => [...a, '--socket', agent.socket]));
    expect(brief).toEqual({ code: 0, stdout: 'ok\n', stderr: '' });
    const status = await agent.status();
    expect(JSON.parse(version!.stdout)).toEqual({
      client: { version: JSON.parse(readFileSync(join(REPO, 'apps/cli/package.json'), 'utf8')).version },
      agent: { version: status.version, apiVersion: status.apiVersion, node: 'toolbox-e2e', kernel: status.bpf!.kernel },
    });
    expect(await probe()).toEqual({ status: 200, body: { health: 'ok', problems: [] } });

    writeFileSync(failFile, '');
    const [failed, json, verbose] = await ciliaRuns([['status', '--brief'], ['status', '--brief', '-o', 'json'], ['status', '--verbose']].map((a) => [...a, '--socket', agent.socket]));
    expect(failed).toEqual({ code: 1, stdout: 'degraded\n', stderr: '' });
    expect(json!.code).toBe(1);
    expect(JSON.parse(json!.stdout)).toEqual({ health: 'degraded', problems: [`fixture-faulty: lost its backend (${failFile} exists)`] });
    const down = await probe();
    expect(down.status).toBe(503);
    expect(down.body.health).toBe('degraded');
    // --verbose puts the problem on its component's row.
    expect(verbose!.code).toBe(0);
    expect(verbose!.stdout).toMatch(/^Components:$/m);
    expect(verbose!.stdout).toMatch(new RegExp(`^\\s*fixture-faulty\\s+0\\.0\\.1\\s+configured\\s+started\\s+cilia\\.HealthReporters\\s+<none>\\s+<none>\\s+lost its backend \\(${failFile.replace(/[.]/g, '\\.')} exists\\)\\s+<none>$`, 'm'));
    expect(verbose!.stdout).toMatch(/^\s*@cilia\/datapath\s+\S+\s+default\s+started\s+cilia\.Datapath,cilia\.EndpointManager,\S+/m);
    expect(verbose!.stdout).not.toMatch(/^Problems:/m);

    rmSync(failFile);
    const [healthy, both] = await ciliaRuns([['status', '--brief'], ['status', '--brief', '--verbose']].map((a) => [...a, '--socket', agent.socket]));
    expect(healthy!.code).toBe(0);
    expect(both!.code).toBe(2);
    expect((await probe()).status).toBe(200);
  });

  // Last: it stops the agent.
  it('status --brief (the bin) says unreachable and exits 1 once the agent is down', async () => {
    const before = spawnSync(CLI, ['status', '--brief', '--socket', agent.socket], { encoding: 'utf8' });
    expect([before.status, before.stdout]).toEqual([0, 'ok\n']);
    const socket = agent.socket;
    expect((await agent.stop()).code).toBe(0);
    const r = spawnSync(CLI, ['status', '--brief', '--socket', socket], { encoding: 'utf8' });
    expect([r.status, r.stdout]).toEqual([1, 'unreachable\n']);
    expect(r.stderr).toBe(`cilia: cannot reach the agent at ${socket}: no such socket (is cilia-agent running?)\n`);
  });
});
