// A datapath plugin made, built and tested outside this repository, then run by the agent:
// @cilia/core and @cilia/plugin-sdk are packed (npm pack), the generator's output is written
// to a temporary directory, renamed to a third party's package, its dependencies pointed at the
// tarballs and installed there; it builds its .o with the SDK's cilia-bpf-build and passes its
// own tests there. Installed next to an agent config (the agent in a private "node" network
// namespace, two pods), its slot program drops UDP to the configured port between the pods —
// until the plugin leaves the config and the agent restarts — its config keys are validated,
// its counter is on /metrics and its route answers on the API socket.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, deletePodNetns, REPO, runAgent, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../support/agent.js';

const exec = promisify(execFile);
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-sdk-${RUN}`;
const K8S_NS = `sdk${RUN}`;
const METRICS = '127.0.0.1:9962';
const NAME = 'udp-drop';
// The generator names it @cilia/plugin-udp-drop; its third-party author renames the package.
const PACKAGE = `@acme/cilia-plugin-${NAME}`;
const PORT = 9999;

async function run(cmd: string, args: string[], cwd: string) {
  try {
    return await exec(cmd, args, { cwd, env, maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const inNs = (ns: string, args: string[]) => sh('ip', ['netns', 'exec', ns, ...args]);

/** `npm pack`s a package directory into `dest`; returns the tarball's path. */
async function pack(packageDir: string, dest: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', packageDir, '--pack-destination', dest, '--json'], dest);
  return join(dest, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
}

// Runs the generator on an in-memory tree holding the workspace's package manifests and writes
// the package it makes to a directory: the generator's output, without touching the repository.
const GENERATE = `
const [generator, repo, name, dest] = process.argv.slice(1);
const { createTreeWithEmptyWorkspace } = await import('@nx/devkit/testing');
const { default: pluginGenerator } = await import(generator);
const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
const { dirname, join } = await import('node:path');
const tree = createTreeWithEmptyWorkspace();
for (const f of ['package.json', 'libs/core/package.json', 'libs/plugin-sdk/package.json']) tree.write(f, readFileSync(join(repo, f)));
await pluginGenerator(tree, { name });
const prefix = 'plugins/' + name + '/';
for (const c of tree.listChanges()) {
  if (!c.path.startsWith(prefix)) continue;
  const out = join(dest, c.path.slice(prefix.length));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, c.content);
}
`;

// UDP and TCP echo on one port, bound to the pod's address; "ready" once listening.
const SERVER = `const net=require('net'),dgram=require('dgram');const [port,addr]=[+process.argv[1],process.argv[2]];
net.createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(port,addr,()=>{
const u=dgram.createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));u.bind(port,addr,()=>console.log('ready'))});`;
// One datagram or connection; prints the echo, exits 1 after a second without one.
const CLIENT = `const [mode,host,port]=[process.argv[1],process.argv[2],+process.argv[3]];const fail=m=>{console.error(m);process.exit(1)};
setTimeout(()=>fail('timeout'),1000);
if(mode==='tcp'){const s=require('net').connect(port,host,()=>s.write('hello-tcp'));s.on('data',d=>{console.log(String(d));process.exit(0)});s.on('error',e=>fail(e.message))}
else{const u=require('dgram').createSocket('udp4');u.on('message',m=>{console.log(String(m));process.exit(0)});u.send('hello-udp',port,host)}`;

/** The value of an unlabelled sample in Prometheus text, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('a datapath plugin built outside the repository with @cilia/plugin-sdk', () => {
  let tmp = '';
  let pluginDir = '';
  let site = '';
  let dir = '';
  let socket = '';
  let bpfRoot = '';
  let ownTest = '';
  let agent: NetnsProcess | undefined;
  const children: ChildProcess[] = [];
  let a: Endpoint;
  let b: Endpoint;
  // What the test could leave in the repository, before it ran.
  let repoBefore: { status: string[]; links: string[] };

  const repoState = () => ({
    status: sh('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=all']).stdout.split('\n'),
    links: readdirSync(join(REPO, 'node_modules/@cilia')).sort(),
  });

  const config = (plugin: boolean, section: Record<string, unknown> = { port: PORT }) => ({
    agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: METRICS, bpfRoot, nodeName: `sdk-${RUN}` },
    ipam: { podCIDRs: ['10.244.43.0/24'] },
    datapath: { masquerade: false },
    ...(plugin ? { plugins: [PACKAGE], [NAME]: section } : {}),
  });

  async function startAgent(plugin: boolean): Promise<void> {
    const file = join(site, 'agent.yaml');
    writeFileSync(file, stringify(config(plugin)));
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', file]);
    children.push(agent.child);
    await waitHealthy(socket, agent);
  }

  async function stopAgent(): Promise<void> {
    agent!.child.kill('SIGTERM');
    expect(await agent!.done).toBe(0);
  }

  function scrape(): string {
    const script = `fetch('http://${METRICS}/metrics').then(async (r) => { if (!r.ok) throw new Error('HTTP ' + r.status); process.stdout.write(await r.text()); })`;
    const r = inNs(NODE_NS, [process.execPath, '-e', script]);
    if (r.status !== 0) throw new Error(`scrape failed: ${r.stderr}`);
    return r.stdout;
  }

  const podNs = (e: Endpoint) => e.netns.replace('/run/netns/', '');
  const send = (mode: 'udp' | 'tcp', port: number) => inNs(podNs(a), [process.execPath, '-e', CLIENT, mode, b.ipv4!, String(port)]).stdout.trim();

  function server(port: number): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', podNs(b), process.execPath, '-e', SERVER, String(port), b.ipv4!], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => String(d).includes('ready') && resolve());
      child.on('close', (code) => reject(new Error(`server exited (${code})`)));
      setTimeout(() => reject(new Error('server not ready')), 5000);
    });
  }

  beforeAll(async () => {
    repoBefore = repoState();
    tmp = mkdtempSync(join(tmpdir(), 'cilia-plugin-sdk-e2e-'));
    const tarballs = join(tmp, 'tarballs');
    pluginDir = join(tmp, NAME);
    site = join(tmp, 'site');
    dir = join(tmp, 'agent');
    socket = join(dir, 'cilia.sock');
    bpfRoot = testPinRoot(tmp);
    mkdirSync(tarballs);
    mkdirSync(dir);

    // Packing ships each package's dist/; a no-op when the bootstrap built them already.
    await run('npx', ['nx', 'run-many', '-t', 'build', '-p', '@cilia/core', '@cilia/plugin-sdk', '--outputStyle=static'], REPO);
    const coreTgz = await pack(join(REPO, 'libs/core'), tarballs);
    const sdkTgz = await pack(join(REPO, 'libs/plugin-sdk'), tarballs);

    // The generator's output, copied out of the workspace, its dependencies on the tarballs.
    await run(process.execPath, ['--input-type=module', '-e', GENERATE, pathToFileURL(join(REPO, 'tools/generators/plugin/generator.js')).href, REPO, NAME, pluginDir], REPO);
    const manifest = JSON.parse(readFileSync(join(pluginDir, 'package.json'), 'utf8'));
    manifest.name = PACKAGE;
    manifest.devDependencies['@cilia/core'] = `file:${coreTgz}`;
    manifest.devDependencies['@cilia/plugin-sdk'] = `file:${sdkTgz}`;
    writeFileSync(join(pluginDir, 'package.json'), JSON.stringify(manifest, null, 2));

    // What its author does: install, build the object, test, build, pack.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], pluginDir);
    await run('npm', ['run', 'build-bpf'], pluginDir);
    ownTest = (await run('npm', ['test'], pluginDir)).stdout.replace(/\x1b\[[0-9;]*m/g, '');
    await run('npm', ['run', 'build'], pluginDir);
    const pluginTgz = await pack(pluginDir, tarballs);

    // What an operator does: install it (and core) next to the agent's config.
    mkdirSync(site);
    writeFileSync(join(site, 'package.json'), JSON.stringify({ name: 'cilia-site', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', coreTgz, pluginTgz], site);

    expect(sh('ip', ['netns', 'add', NODE_NS]).status).toBe(0);
    sh('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
  }, 600_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await agent?.done;
    deletePodNetns(K8S_NS);
    sh('ip', ['netns', 'delete', NODE_NS]);
    if (bpfRoot) rmSync(bpfRoot, { recursive: true, force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('builds its object with the SDK and passes its own tests, outside the repository, on the packed packages', () => {
    expect(ownTest).toMatch(/Tests\s+4 passed/);
    const object = readFileSync(join(pluginDir, `dist/bpf/${NAME}.o`));
    expect(object.readUInt16LE(18), 'e_machine EM_BPF').toBe(247);
    for (const dep of ['@cilia/core', '@cilia/plugin-sdk']) {
      const installed = join(pluginDir, 'node_modules', dep);
      expect(lstatSync(installed).isSymbolicLink(), `${dep} is a copy, not a link into the workspace`).toBe(false);
      expect(realpathSync(installed).startsWith(REPO)).toBe(false);
    }
    expect(existsSync(join(pluginDir, 'node_modules/@cilia/plugin-sdk/dist/bpf/include/cilia/ctx.h'))).toBe(true);
    expect(readFileSync(join(pluginDir, 'package.json'), 'utf8')).not.toContain('../');
    // The agent finds it only through the config file's directory.
    expect(existsSync(join(REPO, 'node_modules', PACKAGE))).toBe(false);
    expect(existsSync(join(site, 'node_modules', PACKAGE, `dist/bpf/${NAME}.o`))).toBe(true);
  });

  it('refuses a wrong type in its config section with exit code 2, naming the key', async () => {
    const file = join(site, 'refused.yaml');
    writeFileSync(file, stringify({ ...config(true, { port: 'dns' }), agent: { apiSocket: join(tmp, 'refused.sock'), stateDir: join(tmp, 'refused'), metricsAddress: '' } }));
    const result = await runAgent(['--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`${NAME}\\.port: .*expected number`));
    expect(existsSync(join(tmp, 'refused.sock'))).toBe(false);
  });

  it('is loaded by package name from next to the config, its program in the to-container shaping slot', async () => {
    await startAgent(true);
    const { body: status } = await api<AgentStatus>(socket, 'GET', '/v1/status');
    expect(status.plugins.find((p) => p.name === PACKAGE)).toMatchObject({
      version: '0.1.0',
      origin: 'configured',
      state: 'started',
      slots: [{ attach: 'to-container', slot: 'shaping', object: NAME, program: 'udp_drop_drop_udp' }],
    });
    const logged = agent!
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ subsys: PACKAGE, msg: `dropping UDP to port ${PORT}`, port: PORT }));
    const listed = sh(join(REPO, 'node_modules/.bin/cilia'), ['plugin', 'list', '--socket', socket]);
    expect(listed.status, listed.stderr).toBe(0);
    const [header, ...rows] = listed.stdout.split('\n').map((l) => l.trimEnd());
    expect(header).toMatch(/ SLOTS$/);
    expect(rows.find((l) => l.startsWith(`${PACKAGE} `))).toMatch(/ to-container\/shaping$/);

    a = (await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name: 'a', namespace: K8S_NS, labels: { 'k8s:app': 'a' } })).body;
    b = (await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name: 'b', namespace: K8S_NS, labels: { 'k8s:app': 'b' } })).body;
    expect([a.state, b.state]).toEqual(['ready', 'ready']);
    await server(PORT);
    await server(PORT + 1);
  }, 60_000);

  it('drops UDP to the configured port between two pods, and only that; its counter is on /metrics and behind its API route', async () => {
    expect(send('udp', PORT + 1)).toBe('hello-udp');
    expect(send('tcp', PORT)).toBe('hello-tcp');
    expect(send('udp', PORT)).toBe('');
    expect(send('udp', PORT)).toBe('');

    const route = await api<{ port: number; packets: number; bytes: number }>(socket, 'GET', `/v1/${NAME}/drops`);
    expect(route.status).toBe(200);
    expect(route.body).toMatchObject({ port: PORT, packets: 2 });
    expect(route.body.bytes).toBeGreaterThan(2 * 28);
    expect(sample(scrape(), 'cilia_udp_drop_dropped_packets_total')).toBe(2);
    expect(scrape()).toContain('# TYPE cilia_udp_drop_dropped_packets_total counter');
  }, 30_000);

  it('stops dropping once the plugin leaves the config and the agent restarts: its slot is cleared', async () => {
    await stopAgent();
    await startAgent(false);
    const { body: status } = await api<AgentStatus>(socket, 'GET', '/v1/status');
    expect(status.plugins.map((p) => p.name)).not.toContain(PACKAGE);
    // The pods (and their servers) outlived the restart; the datagram now gets through.
    expect(send('udp', PORT)).toBe('hello-udp');
    expect(agent!.output()).toContain('slot cleared: its plugin is no longer configured');
    expect((await api(socket, 'GET', `/v1/${NAME}/drops`)).status).toBe(404);
    expect(scrape()).not.toContain('cilia_udp_drop_dropped_packets_total');
    await stopAgent();
  }, 60_000);

  it('changed nothing in the repository', () => {
    const after = repoState();
    // Others may edit the tree meanwhile: what matters is that nothing of this test is in it.
    const added = after.status.filter((l) => !repoBefore.status.includes(l));
    expect(added.filter((l) => l.includes(NAME) || l.includes('plugins/') || l.includes('libs/plugin-sdk/'))).toEqual([]);
    expect(after.links).toEqual(repoBefore.links);
  });
});
