import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir, startFixtureAgent, type FixtureAgent } from './fixture-agent.js';
import { buildPlugin, invoke, type Invocation } from './harness.js';

// The built plugin driven exactly as a runtime drives it, against a fixture of the agent's API.
let bin: string;
let buildDir: string;
let dir: string;
let agent: FixtureAgent;
let socket: string;

beforeAll(async () => {
  ({ bin, dir: buildDir } = await buildPlugin());
});

afterAll(async () => {
  if (buildDir) await removeDir(buildDir);
});

beforeEach(async () => {
  dir = await makeTempDir();
  socket = join(dir, 'cilia.sock');
  agent = await startFixtureAgent(socket);
});

afterEach(async () => {
  await agent?.close();
  if (dir) await removeDir(dir);
});

const NETNS = '/run/netns/cni-test-pod';
let seq = 0;

function conf(extra: Record<string, unknown> = {}, version = '1.0.0') {
  return { cniVersion: version, name: 'cilia', type: 'cilia-cni', socket, ...extra };
}

function attach(overrides: Partial<Invocation> = {}): Invocation {
  return { command: 'ADD', containerId: `c${++seq}abcdef`, netns: NETNS, ifName: 'eth0', config: conf(), ...overrides };
}

function expectCniError(r: { code: number | null; json: Record<string, unknown> | undefined }, code: number, msg: RegExp) {
  expect(r.code).not.toBe(0);
  expect(r.json).toMatchObject({ code });
  expect(typeof r.json?.['cniVersion']).toBe('string');
  expect(r.json?.['msg']).toMatch(msg);
}

describe('VERSION', () => {
  it('lists the supported versions and answers in the requested one', async () => {
    const r = await invoke(bin, { command: 'VERSION', config: { cniVersion: '0.4.0' } });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it('answers in the newest version when stdin is empty or names an unknown version', async () => {
    for (const config of [undefined, { cniVersion: '9.9.9' }]) {
      const r = await invoke(bin, { command: 'VERSION', config });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    }
  });
});

describe('ADD', () => {
  it('asks the agent for an endpoint and prints a spec-conformant 1.0.0 result', async () => {
    const r = await invoke(
      bin,
      attach({
        containerId: 'pod-one-1234',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=pod-one-1234',
        config: conf({ labels: { app: 'web' }, args: { labels: { tier: 'front' }, cni: { labels: [{ key: 'team', value: 'a' }] } }, dns: { nameservers: ['10.200.0.10'] } }),
      }),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const created = agent.requests.find((q) => q.method === 'POST');
    expect(created?.body).toEqual({
      name: 'web-0',
      namespace: 'shop',
      labels: { app: 'web', tier: 'front', team: 'a' },
      netns: NETNS,
      interfaceName: 'eth0',
      containerId: 'pod-one-1234',
    });
    const ep = [...agent.endpoints.values()][0]!;
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      interfaces: [
        { name: ep.hostInterface, mac: ep.hostMac },
        { name: 'eth0', mac: ep.mac, sandbox: NETNS },
      ],
      ips: [{ address: `${ep.ipv4}/32`, gateway: '10.200.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.200.0.1' }],
      dns: { nameservers: ['10.200.0.10'] },
    });
  });

  it('names the endpoint after the container in the "default" namespace without Kubernetes args', async () => {
    const r = await invoke(bin, attach({ containerId: 'plain_container.7' }));
    expect(r.code).toBe(0);
    expect(agent.requests.find((q) => q.method === 'POST')?.body).toMatchObject({ name: 'plain-container.7', namespace: 'default', labels: {} });
  });

  it('puts "version" into ips for a 0.4.0 config', async () => {
    const r = await invoke(bin, attach({ config: conf({}, '0.4.0') }));
    expect(r.code).toBe(0);
    expect(r.json?.['cniVersion']).toBe('0.4.0');
    expect((r.json?.['ips'] as { version?: string }[])[0]?.version).toBe('4');
  });

  it('is idempotent: ADD of an existing attachment returns its result and creates nothing', async () => {
    const first = await invoke(bin, attach({ containerId: 'again-1' }));
    const second = await invoke(bin, attach({ containerId: 'again-1' }));
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(second.json).toEqual(first.json);
    expect(agent.endpoints.size).toBe(1);
  });

  it('refuses an attachment that exists in another netns (code 104)', async () => {
    expect((await invoke(bin, attach({ containerId: 'moved-1' }))).code).toBe(0);
    const r = await invoke(bin, attach({ containerId: 'moved-1', netns: '/run/netns/elsewhere' }));
    expectCniError(r, 104, /already attached .* in netns \/run\/netns\/cni-test-pod, not \/run\/netns\/elsewhere/);
  });

  it('keeps an earlier plugin\'s prevResult and appends its own entries', async () => {
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'other0' }], ips: [{ address: '192.168.9.9/24', interface: 0 }], dns: {} };
    const r = await invoke(bin, attach({ config: conf({ prevResult }) }));
    expect(r.code).toBe(0);
    const interfaces = r.json?.['interfaces'] as { name: string }[];
    expect(interfaces.map((i) => i.name)).toEqual(['other0', [...agent.endpoints.values()][0]!.hostInterface, 'eth0']);
    expect(r.json?.['ips']).toEqual([{ address: '192.168.9.9/24', interface: 0 }, expect.objectContaining({ interface: 2 })]);
  });

  it('maps the agent\'s answers: 400 on a field names the CNI input, 503 is try-again, 507 is exhaustion', async () => {
    agent.inject('POST /v1/endpoints', { status: 400, body: { error: 'expected an absolute path of a network namespace', path: 'netns' } });
    expectCniError(await invoke(bin, attach()), 4, /CNI_NETNS rejected by the agent: expected an absolute path/);
    agent.inject('POST /v1/endpoints', { status: 400, body: { error: 'expected a string', path: 'labels.app' } });
    expectCniError(await invoke(bin, attach()), 7, /invalid network config: labels rejected by the agent: expected a string \(field labels\.app\)/);
    agent.inject('POST /v1/endpoints', { status: 503, body: { error: 'the agent is starting or stopping; try again' } });
    expectCniError(await invoke(bin, attach()), 11, /try again later: the agent is starting/);
    agent.inject('POST /v1/endpoints', { status: 507, body: { error: 'cannot allocate an address: 10.200.0.0/30 is exhausted' } });
    expectCniError(await invoke(bin, attach()), 102, /no pod address left: .*exhausted/);
    agent.inject('POST /v1/endpoints', { status: 500, body: { error: 'boom' } });
    expectCniError(await invoke(bin, attach()), 101, /ADD failed: the agent answered POST \/v1\/endpoints: HTTP 500: boom/);
  });
});

describe('versions', () => {
  it('refuses a cniVersion it does not speak with code 1', async () => {
    for (const version of ['0.3.1', '2.0.0']) {
      expectCniError(await invoke(bin, attach({ config: conf({}, version) })), 1, new RegExp(`cniVersion "${version.replace(/\./g, '\\.')}" is not supported`));
    }
    expect(agent.requests).toHaveLength(0);
  });

  it('refuses STATUS and GC in a config older than 1.1.0', async () => {
    expectCniError(await invoke(bin, { command: 'STATUS', config: conf() }), 1, /STATUS is defined from CNI 1\.1\.0.*cniVersion 1\.0\.0/);
    expectCniError(await invoke(bin, { command: 'GC', config: conf({ 'cni.dev/valid-attachments': [] }, '0.4.0') }), 1, /GC is defined from CNI 1\.1\.0/);
  });
});

describe('bad input', () => {
  it('names the invalid network config field (code 7), or says stdin is not JSON (code 6)', async () => {
    expectCniError(await invoke(bin, attach({ config: '{"cniVersion": ' })), 6, /cannot decode the network config/);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: undefined }, /invalid network config: name is required/],
      [{ name: 'bad name!' }, /invalid network config: name "bad name!" must start/],
      [{ cniVersion: 4 }, /invalid network config: cniVersion must be a non-empty string/],
      [{ socket: 'relative.sock' }, /invalid network config: socket must be an absolute path/],
      [{ labels: { app: 7 } }, /invalid network config: labels\.app must be a string, got number 7/],
      [{ args: { cni: { labels: [{ key: 'x' }] } } }, /invalid network config: args\.cni\.labels\[0\]/],
      [{ timeoutMs: -1 }, /invalid network config: timeoutMs must be a positive integer/],
      [{ prevResult: { cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] } }, /invalid network config: prevResult\.interfaces\[0\]\.name must be a string/],
    ];
    for (const [extra, msg] of cases) expectCniError(await invoke(bin, attach({ config: conf(extra) })), 7, msg);
    expect(agent.requests).toHaveLength(0);
  });

  it('names the missing or invalid environment variable (code 4)', async () => {
    const cases: [Partial<Invocation>, RegExp][] = [
      [{ command: undefined }, /CNI_COMMAND is not set/],
      [{ command: 'FROB' }, /CNI_COMMAND is "FROB", expected one of ADD, DEL, CHECK, VERSION, STATUS, GC/],
      [{ netns: undefined }, /CNI_NETNS is required for ADD but not set/],
      [{ containerId: undefined, ifName: undefined }, /CNI_CONTAINERID, CNI_IFNAME are required for ADD/],
      [{ containerId: '-leading-dash' }, /CNI_CONTAINERID is "-leading-dash": it must start with a letter or digit/],
      [{ ifName: 'much-too-long-name0' }, /CNI_IFNAME "much-too-long-name0" is longer than 15 characters/],
      [{ ifName: 'eth:0' }, /CNI_IFNAME "eth:0" may not contain/],
      [{ netns: 'relative/ns' }, /CNI_NETNS is "relative\/ns": it must be an absolute path/],
      [{ args: 'K8S_POD_NAME=a;garbage' }, /CNI_ARGS has the entry "garbage"/],
    ];
    for (const [overrides, msg] of cases) expectCniError(await invoke(bin, attach(overrides)), 4, msg);
    expect(agent.requests).toHaveLength(0);
  });
});

describe('with the agent down', () => {
  it('ADD fails with code 100 naming the socket and the reason', async () => {
    await agent.close();
    const r = await invoke(bin, attach());
    expectCniError(r, 100, new RegExp(`^agent not reachable at ${socket.replace(/[.]/g, '\\.')}: `));
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('ADD fails with code 100 when the agent accepts but does not answer within timeoutMs', async () => {
    agent.inject('POST /v1/endpoints', 'hang');
    const started = Date.now();
    const r = await invoke(bin, attach({ config: conf({ timeoutMs: 300 }) }));
    expectCniError(r, 100, /agent not reachable at .*cilia\.sock: no answer to POST \/v1\/endpoints within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('ADD fails with code 100 when no socket exists at all', async () => {
    const missing = join(dir, 'nowhere', 'cilia.sock');
    const r = await invoke(bin, attach({ config: conf({ socket: missing }) }));
    expectCniError(r, 100, /agent not reachable at .*nowhere\/cilia\.sock: the socket does not exist \(is cilia-agent running\?\)/);
  });

  it('DEL succeeds, defers the delete, and the next STATUS that reaches the agent carries it out', async () => {
    const add = await invoke(bin, attach({ containerId: 'deferred-1' }));
    expect(add.code).toBe(0);
    await agent.close();
    const del = await invoke(bin, attach({ command: 'DEL', containerId: 'deferred-1' }));
    expect(del.code).toBe(0);
    expect(del.stdout).toBe('');
    const pendingDir = join(dir, 'cni-pending-deletes');
    expect(readdirSync(pendingDir)).toEqual(['deferred-1@eth0.json']);
    // The agent comes back (same state): STATUS replays the delete.
    const endpoints = agent.endpoints;
    agent = await startFixtureAgent(socket);
    for (const [id, e] of endpoints) agent.endpoints.set(id, e);
    expect(agent.endpoints.size).toBe(1);
    const status = await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') });
    expect(status.code).toBe(0);
    expect(agent.endpoints.size).toBe(0);
    expect(readdirSync(pendingDir)).toEqual([]);
  });

  it('STATUS fails with code 50 naming the socket', async () => {
    await agent.close();
    expectCniError(await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') }), 50, /agent not reachable at .*cilia\.sock/);
  });

  it('GC fails with code 100', async () => {
    await agent.close();
    expectCniError(await invoke(bin, { command: 'GC', config: conf({ 'cni.dev/valid-attachments': [] }, '1.1.0') }), 100, /agent not reachable/);
  });
});

describe('DEL', () => {
  it('deletes the attachment\'s endpoint, prints nothing, and is idempotent', async () => {
    expect((await invoke(bin, attach({ containerId: 'gone-1' }))).code).toBe(0);
    expect((await invoke(bin, attach({ containerId: 'keep-1' }))).code).toBe(0);
    const del = await invoke(bin, attach({ command: 'DEL', containerId: 'gone-1' }));
    expect(del).toMatchObject({ code: 0, stdout: '' });
    expect([...agent.endpoints.values()].map((e) => e.containerId)).toEqual(['keep-1']);
    expect(agent.requests.at(-1)).toMatchObject({ method: 'DELETE', url: '/v1/endpoints?containerId=gone-1&interfaceName=eth0' });
    // Again, and without CNI_NETNS (the netns may be gone already): still success.
    expect(await invoke(bin, attach({ command: 'DEL', containerId: 'gone-1' }))).toMatchObject({ code: 0, stdout: '' });
    expect(await invoke(bin, attach({ command: 'DEL', containerId: 'gone-1', netns: undefined }))).toMatchObject({ code: 0, stdout: '' });
    expect(agent.endpoints.size).toBe(1);
    expect(existsSync(join(dir, 'cni-pending-deletes'))).toBe(false);
  });
});

describe('CHECK', () => {
  // CHECK inspects the kernel too, so these attachments get a real netns (the fixture plumbs it).
  const namespaces: string[] = [];
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  afterEach(() => {
    for (const ns of namespaces.splice(0)) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  });

  async function added(containerId: string) {
    const ns = `cnifx-${randomBytes(3).toString('hex')}`;
    ip('netns', 'add', ns);
    namespaces.push(ns);
    const netns = `/run/netns/${ns}`;
    const r = await invoke(bin, attach({ containerId, netns }));
    expect(r.code).toBe(0);
    const check = (prevResult: unknown, overrides: Partial<Invocation> = {}) =>
      invoke(bin, attach({ command: 'CHECK', containerId, netns, config: conf({ prevResult }), ...overrides }));
    return { ns, netns, result: r.json!, check };
  }

  it('passes when the agent\'s endpoint and the kernel match prevResult, printing nothing', async () => {
    const { result, check, ns } = await added('check-ok');
    expect(ip('-n', ns, '-o', 'addr', 'show', 'dev', 'eth0')).toContain((result['ips'] as { address: string }[])[0]!.address);
    expect(await check(result)).toMatchObject({ code: 0, stdout: '' });
  });

  it('fails (code 103) when the agent no longer has the attachment', async () => {
    const { result, check } = await added('check-gone');
    agent.endpoints.clear();
    expectCniError(await check(result), 103, /CHECK failed: the agent has no endpoint for container check-gone interface eth0/);
  });

  it('fails (code 103) naming the difference when prevResult disagrees with the agent', async () => {
    const { result, check } = await added('check-diff');
    const prevResult = result as { ips: { address: string }[]; interfaces: { mac: string }[] };
    const wrongIp = { ...prevResult, ips: [{ ...prevResult.ips[0], address: '10.200.0.99/32' }] };
    expectCniError(await check(wrongIp), 103, /CHECK failed: the endpoint's address 10\.200\.0\.\d+\/32 is not in prevResult\.ips \(found: 10\.200\.0\.99\/32\)/);
    const wrongMac = { ...prevResult, interfaces: [prevResult.interfaces[0], { ...prevResult.interfaces[1], mac: '02:ff:ff:ff:ff:ff' }] };
    expectCniError(await check(wrongMac), 103, /CHECK failed: eth0 has MAC 02:00:00:00:02:\w+ at the agent, prevResult says 02:ff:ff:ff:ff:ff/);
    expectCniError(await check(prevResult, { netns: '/run/netns/other' }), 103, /CHECK failed: the agent has the endpoint in netns \/run\/netns\/cnifx-\w+, CNI_NETNS is \/run\/netns\/other/);
  });

  it('fails (code 103) when the kernel lost the address, the link went down, or the veth is gone', async () => {
    const { result, check, ns, netns } = await added('check-kernel');
    const address = (result['ips'] as { address: string }[])[0]!.address;
    ip('-n', ns, 'addr', 'del', address, 'dev', 'eth0');
    expectCniError(await check(result), 103, new RegExp(`CHECK failed: eth0 in ${netns} lacks the address ${address.replace(/\./g, '\\.')} \\(IPv4 addresses: none\\)`));
    ip('-n', ns, 'addr', 'add', address, 'dev', 'eth0');
    expect(await check(result)).toMatchObject({ code: 0 });
    ip('-n', ns, 'link', 'set', 'eth0', 'down');
    expectCniError(await check(result), 103, new RegExp(`CHECK failed: eth0 in ${netns} is down`));
    const hostIf = (result['interfaces'] as { name: string }[])[0]!.name;
    ip('link', 'del', hostIf);
    expectCniError(await check(result), 103, new RegExp(`CHECK failed: eth0 does not exist in ${netns}`));
  });

  it('requires prevResult (code 7 naming it)', async () => {
    await added('check-noprev');
    expectCniError(await invoke(bin, attach({ command: 'CHECK', containerId: 'check-noprev' })), 7, /invalid network config: prevResult is required for CHECK/);
  });
});

describe('STATUS', () => {
  it('succeeds silently when the agent is healthy', async () => {
    expect(await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') })).toMatchObject({ code: 0, stdout: '' });
    expect(agent.requests.map((q) => q.url)).toEqual(['/v1/status', '/v1/endpoints?containerId=cilia-cni-status-probe&interfaceName=eth0']);
  });

  it('is code 50 when the agent is healthy but does not serve the endpoints API', async () => {
    agent.inject('GET /v1/endpoints', { status: 404, body: { error: 'no such API route: GET /v1/endpoints' } });
    expectCniError(await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') }), 50, /does not serve the endpoints API: GET \/v1\/endpoints answers HTTP 404/);
    agent.inject('POST /v1/endpoints', { status: 404, body: { error: 'no such API route: POST /v1/endpoints' } });
    expectCniError(await invoke(bin, attach()), 101, /ADD failed: the agent does not serve POST \/v1\/endpoints \(is its datapath plugin loaded\?\)/);
  });

  it('is code 50 while the agent is not ready and 51 when it is degraded', async () => {
    agent.health = 'starting';
    expectCniError(await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') }), 50, /not ready \(health: starting\)/);
    agent.health = 'degraded';
    agent.problems = ['plugin x: failed'];
    expectCniError(await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') }), 51, /is degraded: plugin x: failed/);
  });
});

describe('GC', () => {
  it('sends the valid attachments; the agent drops every other CNI endpoint', async () => {
    for (const id of ['gc-keep', 'gc-drop']) expect((await invoke(bin, attach({ containerId: id }))).code).toBe(0);
    const r = await invoke(bin, { command: 'GC', config: conf({ 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] }, '1.1.0') });
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(agent.requests.at(-1)).toMatchObject({ method: 'POST', url: '/v1/endpoints/gc', body: { valid: [{ containerId: 'gc-keep', interfaceName: 'eth0' }] } });
    expect([...agent.endpoints.values()].map((e) => e.containerId)).toEqual(['gc-keep']);
  });

  it('accepts the draft name cni.dev/attachments and requires one of them', async () => {
    expect((await invoke(bin, { command: 'GC', config: conf({ 'cni.dev/attachments': [] }, '1.1.0') })).code).toBe(0);
    expectCniError(await invoke(bin, { command: 'GC', config: conf({}, '1.1.0') }), 7, /cni\.dev\/valid-attachments is required for GC/);
    expectCniError(
      await invoke(bin, { command: 'GC', config: conf({ 'cni.dev/valid-attachments': [{ containerID: 'x' }] }, '1.1.0') }),
      7,
      /cni\.dev\/valid-attachments\[0\] must be an object with string "containerID" and "ifname"/,
    );
  });
});

describe('logging', () => {
  it('writes nothing to stderr unless CILIA_CNI_DEBUG is set, then JSON lines with subsys "cni"', async () => {
    const quiet = await invoke(bin, attach());
    expect(quiet.stderr).toBe('');
    const loud = await invoke(bin, attach({ env: { CILIA_CNI_DEBUG: '1' } }));
    expect(loud.code).toBe(0);
    const lines = loud.stderr.trim().split('\n').map((l) => JSON.parse(l) as { subsys: string; msg: string });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.subsys === 'cni')).toBe(true);
    expect(lines.map((l) => l.msg)).toContain('endpoint created');
    // stdout stays the bare result.
    expect(Object.keys(loud.json ?? {})).toEqual(['cniVersion', 'interfaces', 'ips', 'routes', 'dns']);
  });
});

describe('cilia-cni install', () => {
  it('writes an executable launcher that a runtime can exec by name', async () => {
    const binDir = join(dir, 'opt-cni-bin');
    const out = spawnSync(bin, ['install', '--dir', binDir], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`installed ${join(binDir, 'cilia-cni')}\n`);
    const r = await invoke(join(binDir, 'cilia-cni'), { command: 'VERSION', config: { cniVersion: '1.1.0' }, env: { PATH: '/nonexistent' } });
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    const add = await invoke(join(binDir, 'cilia-cni'), attach({ env: { PATH: '/nonexistent' } }));
    expect(add.code).toBe(0);
  });

  it('writes a launcher that also works inside an ES module scope', async () => {
    const binDir = join(dir, 'esm-scope', 'bin');
    await mkdir(binDir, { recursive: true });
    await writeFile(join(dir, 'esm-scope', 'package.json'), '{"type":"module"}\n');
    expect(spawnSync(bin, ['install', '--dir', binDir, '--name', 'cilia-cni-esm'], { encoding: 'utf8' }).status).toBe(0);
    const r = await invoke(join(binDir, 'cilia-cni-esm'), { command: 'VERSION', config: { cniVersion: '1.0.0' } });
    expect(r.json).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it('rejects unknown options and commands with usage', async () => {
    expect(spawnSync(bin, ['install', '--frob'], { encoding: 'utf8' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown option "--frob"/) });
    expect(spawnSync(bin, ['bogus'], { encoding: 'utf8' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown command "bogus"/) });
    expect(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^cilia-cni \d+\.\d+\.\d+ \(CNI 0\.4\.0, 1\.0\.0, 1\.1\.0\)/);
  });
});

describe('deferred deletes', () => {
  it('discards a torn record instead of failing', async () => {
    const pendingDir = join(dir, 'cni-pending-deletes');
    await mkdir(pendingDir);
    await writeFile(join(pendingDir, 'torn@eth0.json'), '{"contai');
    const r = await invoke(bin, { command: 'STATUS', config: conf({}, '1.1.0') });
    expect(r.code).toBe(0);
    expect(readdirSync(pendingDir)).toEqual([]);
  });
});
