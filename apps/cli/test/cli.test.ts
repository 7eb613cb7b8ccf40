import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { run } from '../src/index.js';
import {
  configView,
  makeStaleSocket,
  makeTempDir,
  okRoutes,
  plugins,
  removeDir,
  startFixtureAgent,
  status,
  type FixtureAgent,
} from './fixture-agent.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cilia(argv: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  });
  return { code, stdout, stderr };
}

/** Splits a table into rows of cells (cells are separated by two or more spaces). */
function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}

let dir: string;
let agent: FixtureAgent;

beforeEach(async () => {
  dir = await makeTempDir();
  agent = await startFixtureAgent(join(dir, 'cilia.sock'), okRoutes);
});

afterEach(async () => {
  await agent.close();
  await removeDir(dir);
});

describe('cilia status', () => {
  it('prints a header block, a plugins table and the BPF features by default', async () => {
    const r = await cilia(['status', '--socket', agent.socketPath]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'Node:     node-a',
      'Version:  0.1.0 (plugin API 1.0.0)',
      'Uptime:   3h7m (since 2026-11-26T10:00:00.000Z)',
      'Health:   ok',
    ]);
    expect(r.stdout).not.toContain('Problems');
    const header = lines.findIndex((l) => l.trim().startsWith('NAME'));
    expect(lines[header - 1]).toBe('Plugins:');
    expect(cells(lines[header]!)).toEqual(['NAME', 'VERSION', 'ORIGIN', 'STATE']);
    expect(cells(lines[header + 1]!)).toEqual(['@cilia/plugin-ipam-host', '0.1.0', 'default', 'started']);
    expect(cells(lines[header + 2]!)).toEqual(['cilia-plugin-example', '2.3.4', 'configured', 'started']);
    // Columns line up: every row's VERSION starts where the header's does.
    const col = lines[header]!.indexOf('VERSION');
    expect(lines[header + 1]!.indexOf('0.1.0')).toBe(col);
    expect(lines[header + 2]!.indexOf('2.3.4')).toBe(col);
    const bpf = lines.indexOf('BPF:');
    expect(bpf).toBeGreaterThan(header);
    expect(lines.slice(bpf + 1, bpf + 7).map((l) => cells(l))).toEqual([
      ['Kernel:', '6.18.0'],
      ['bpffs:', 'mounted at /sys/fs/bpf'],
      ['BTF:', 'yes'],
      ['JIT:', 'yes'],
      ['Supported:', 'ringbuf, lpm_trie'],
      ['Missing:', 'bpf_sk_assign'],
    ]);
    expect(agent.requests).toEqual(['/v1/status']);
  });

  it('lists problems, shows failed plugins with their error, and omits BPF when not probed', async () => {
    await agent.close();
    const degraded = {
      ...status,
      health: 'degraded',
      problems: ['plugin cilia-plugin-example failed to start', 'bpffs not mounted'],
      plugins: [plugins[0], { ...plugins[1], state: 'failed', error: 'EPERM loading\nprogram' }],
      bpf: undefined,
    };
    agent = await startFixtureAgent(agent.socketPath, { '/v1/status': { body: degraded } });
    const r = await cilia(['status', '--socket', agent.socketPath]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('Health:    degraded');
    expect(lines).toContain('Problems:  plugin cilia-plugin-example failed to start');
    expect(lines).toContain('           bpffs not mounted');
    const header = lines.findIndex((l) => l.trim().startsWith('NAME'));
    expect(cells(lines[header]!)).toEqual(['NAME', 'VERSION', 'ORIGIN', 'STATE', 'ERROR']);
    expect(cells(lines[header + 2]!)).toEqual(['cilia-plugin-example', '2.3.4', 'configured', 'failed', 'EPERM loading program']);
    expect(cells(lines[header + 1]!)).toEqual(['@cilia/plugin-ipam-host', '0.1.0', 'default', 'started', '<none>']);
    expect(r.stdout).not.toContain('BPF');
  });

  it('says <none> under Plugins when the agent runs no plugins', async () => {
    await agent.close();
    agent = await startFixtureAgent(agent.socketPath, { '/v1/status': { body: { ...status, plugins: [] } } });
    const r = await cilia(['status', '--socket', agent.socketPath]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[lines.indexOf('Plugins:') + 1]).toBe('  <none>');
    expect(r.stdout).not.toContain('NAME');
  });

  it('prints the API JSON with -o json and the same data with -o yaml', async () => {
    const json = await cilia(['status', '-o', 'json', '--socket', agent.socketPath]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(status);
    expect(json.stdout).toBe(JSON.stringify(status, null, 2) + '\n');
    const yaml = await cilia(['status', '--output', 'yaml', '--socket', agent.socketPath]);
    expect(yaml.code).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual(status);
  });
});

describe('cilia plugin list', () => {
  it('prints NAME VERSION ORIGIN STATE PROVIDES REQUIRES SLOTS', async () => {
    const r = await cilia(['plugin', 'list', '--socket', agent.socketPath]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(cells(lines[0]!)).toEqual(['NAME', 'VERSION', 'ORIGIN', 'STATE', 'PROVIDES', 'REQUIRES', 'SLOTS']);
    expect(cells(lines[1]!)).toEqual(['@cilia/plugin-ipam-host', '0.1.0', 'default', 'started', 'Ipam', '<none>', '<none>']);
    expect(cells(lines[2]!)).toEqual([
      'cilia-plugin-example',
      '2.3.4',
      'configured',
      'started',
      'Encapsulation,L7Proxy',
      'Ipam,Datapath',
      'from-netdev/pre,from-container/forward',
    ]);
    expect(lines.every((l) => l === l.trimEnd())).toBe(true);
    expect(agent.requests).toEqual(['/v1/plugins']);
  });

  it('supports -o json, -o yaml and the ls alias', async () => {
    const json = await cilia(['plugin', 'ls', '-o', 'json', '--socket', agent.socketPath]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(plugins);
    const yaml = await cilia(['plugin', 'list', '-o', 'yaml', '--socket', agent.socketPath]);
    expect(yaml.code).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual(plugins);
  });
});

describe('cilia config view', () => {
  it('prints the effective config as YAML, preceded by its sources, by default', async () => {
    const r = await cilia(['config', 'view', '--socket', agent.socketPath]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      '# Effective configuration, read from:',
      '#   /opt/cilia/presets/standalone.yaml',
      '#   /etc/cilia/agent.yaml',
    ]);
    expect(parseYaml(r.stdout)).toEqual(configView.config);
    const asTable = await cilia(['config', 'view', '-o', 'table', '--socket', agent.socketPath]);
    expect(asTable.stdout).toBe(r.stdout);
  });

  it('prints the whole API answer with -o json and -o yaml', async () => {
    const json = await cilia(['config', 'view', '-o', 'json', '--socket', agent.socketPath]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(configView);
    const yaml = await cilia(['config', 'view', '-o', 'yaml', '--socket', agent.socketPath]);
    expect(yaml.code).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual(configView);
  });
});

describe('choosing the socket', () => {
  let other: FixtureAgent;
  beforeEach(async () => {
    await agent.close();
    agent = await startFixtureAgent(agent.socketPath, { '/v1/plugins': { body: [plugins[0]] } });
    other = await startFixtureAgent(join(dir, 'other.sock'), { '/v1/plugins': { body: [plugins[1]] } });
  });
  afterEach(() => other.close());

  it('uses CILIA_SOCKET when no flag names a socket', async () => {
    const r = await cilia(['plugin', 'list', '-o', 'json'], { CILIA_SOCKET: other.socketPath });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([plugins[1]]);
    expect(other.requests).toEqual(['/v1/plugins']);
    expect(agent.requests).toEqual([]);
  });

  it('prefers --socket over CILIA_SOCKET, before or after the command', async () => {
    for (const argv of [
      ['--socket', agent.socketPath, 'plugin', 'list', '-o', 'json'],
      ['plugin', 'list', '-o', 'json', '--socket', agent.socketPath],
    ]) {
      const r = await cilia(argv, { CILIA_SOCKET: other.socketPath });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([plugins[0]]);
    }
    expect(agent.requests).toEqual(['/v1/plugins', '/v1/plugins']);
    expect(other.requests).toEqual([]);
  });

  it('maps --node NAME to /var/run/cilia/NAME/cilia.sock, below --socket and above CILIA_SOCKET', async () => {
    const node = `cli-test-${randomBytes(4).toString('hex')}`;
    const nodeDir = join('/var/run/cilia', node);
    await mkdir(nodeDir, { recursive: true });
    const nodeAgent = await startFixtureAgent(join(nodeDir, 'cilia.sock'), { '/v1/status': { body: { ...status, node } } });
    try {
      const r = await cilia(['--node', node, 'status', '-o', 'json'], { CILIA_SOCKET: other.socketPath });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).node).toBe(node);
      expect(nodeAgent.requests).toEqual(['/v1/status']);
      const bySocket = await cilia(['--node', node, '--socket', agent.socketPath, 'plugin', 'list', '-o', 'json']);
      expect(JSON.parse(bySocket.stdout)).toEqual([plugins[0]]);
      expect(nodeAgent.requests).toEqual(['/v1/status']);
    } finally {
      await nodeAgent.close();
      await rm(nodeDir, { recursive: true, force: true });
    }
  });

  it('refuses a --node name that would escape its directory', async () => {
    const r = await cilia(['--node', '../etc', 'status']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^cilia: --node: invalid node name '\.\.\/etc'[^\n]*\n$/);
  });
});

describe('errors', () => {
  it('says the agent is not running and names the socket when nothing is there (ENOENT)', async () => {
    const missing = join(dir, 'absent.sock');
    const r = await cilia(['status'], { CILIA_SOCKET: missing });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `cilia: cannot reach the agent at ${missing}: no such socket (is cilia-agent running?)\n`,
    });
  });

  it('version prints its own version and says the agent is unreachable, exit 1', async () => {
    const missing = join(dir, 'absent.sock');
    const r = await cilia(['version'], { CILIA_SOCKET: missing });
    expect(r).toEqual({
      code: 1,
      stdout: `Client:  ${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\nAgent:   unreachable\n`,
      stderr: `cilia: cannot reach the agent at ${missing}: no such socket (is cilia-agent running?)\n`,
    });
  });

  it('says the agent is not running when the socket is stale (ECONNREFUSED)', async () => {
    const stale = join(dir, 'stale.sock');
    await makeStaleSocket(stale);
    const r = await cilia(['plugin', 'list', '--socket', stale]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `cilia: cannot reach the agent at ${stale}: connection refused (is cilia-agent running?)\n`,
    });
  });

  it("prints the API's error message on one line and exits 1", async () => {
    await agent.close();
    agent = await startFixtureAgent(agent.socketPath, {
      '/v1/status': { status: 503, body: { error: 'agent is stopping' } },
      '/v1/config': { status: 400, body: { error: 'unknown key', path: 'api.sockt' } },
      '/v1/plugins': { status: 502, body: '<html>bad gateway</html>' },
    });
    expect(await cilia(['status', '--socket', agent.socketPath])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cilia: agent is stopping\n',
    });
    expect(await cilia(['config', 'view', '-o', 'json', '--socket', agent.socketPath])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cilia: unknown key (at api.sockt)\n',
    });
    expect(await cilia(['plugin', 'list', '--socket', agent.socketPath])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cilia: the agent answered GET /v1/plugins with HTTP 502 and no error message\n',
    });
  });

  it('rejects a bad -o value with exit 2 before contacting the agent', async () => {
    for (const argv of [
      ['status', '-o', 'xml'],
      ['plugin', 'list', '--output', 'xml'],
      ['config', 'view', '-o', 'xml'],
    ]) {
      const r = await cilia([...argv, '--socket', agent.socketPath]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        "cilia: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are table, json, yaml.\n",
      );
    }
    expect(agent.requests).toEqual([]);
  });

  it('reports unknown commands and flags on one line with exit 2', async () => {
    expect(await cilia(['statsu'])).toEqual({
      code: 2,
      stdout: '',
      stderr: "cilia: unknown command 'statsu' (Did you mean status?)\n",
    });
    expect(await cilia(['status', '--bogus'])).toEqual({ code: 2, stdout: '', stderr: "cilia: unknown option '--bogus'\n" });
    const extra = await cilia(['plugin', 'list', 'extra']);
    expect(extra.code).toBe(2);
    expect(extra.stderr.split('\n')).toHaveLength(2);
    expect(extra.stderr).toMatch(/^cilia: too many arguments for 'list'/);
  });

  it('prints help and exits 0 for the bare command, a bare group, and --help', async () => {
    const bare = await cilia([]);
    expect(bare.code).toBe(0);
    expect(bare.stdout).toMatch(/^Usage: cilia /);
    expect(bare.stdout).toContain('CILIA_SOCKET');
    const group = await cilia(['plugin']);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/^Usage: cilia plugin /);
    expect(group.stdout).toContain('list|ls');
    const help = await cilia(['status', '--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('-o, --output <format>');
  });
});
