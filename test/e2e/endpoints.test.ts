// Endpoints on one node, for real: the agent runs inside a private "node" network namespace
// (nsenter --net, so bpffs and /run/netns stay shared) whose default route leads to an
// "outside" namespace with no route back to the pod CIDR — only masquerading gets replies home.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { AgentStatus, Endpoint } from '@cilia/core';
import { BpfMap, PerCpuMap } from '@cilia/bpf';
import { datapathMaps } from '@cilia/datapath';
import { AGENT_MAIN, api, REPO, testPinRoot, spawnInNetns, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-node-${RUN}`;
const OUT_NS = `cilia-e2e-out-${RUN}`;
const K8S_NS = `e2e${RUN}`;
const NODE_IP = '172.31.250.1';
const OUT_IP = '172.31.250.2';
const REMOTE_IP = '198.51.100.7';
const POD_CIDR = '10.244.7.0/24';
const CLI = join(REPO, 'node_modules/.bin/cilia');

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const inNs = (ns: string, args: string[]) => tryRun('ip', ['netns', 'exec', ns, ...args]);
/** Name and id of the tc program on a node-side interface, from `tc filter show`. */
const tcProgram = (dev: string, dir: 'ingress' | 'egress') => {
  const text = tryRun('ip', ['netns', 'exec', NODE_NS, 'tc', 'filter', 'show', 'dev', dev, dir]).stdout;
  const m = / id (\d+) name (\S+)/.exec(text);
  return m ? { id: Number(m[1]), name: m[2] } : undefined;
};

// Echo server (TCP and UDP on one port); "whoami" answers TCP with the peer's address.
// The UDP side binds the given address so replies leave from it (a 0.0.0.0 socket would answer
// from whatever address routing picks, which no NAT — Linux's or ours — maps back).
const SERVER = `const net=require('net'),dgram=require('dgram');const [mode,port,addr]=[process.argv[1],+process.argv[2],process.argv[3]||'0.0.0.0'];
net.createServer(s=>{s.on('error',()=>{});if(mode==='whoami')s.end(s.remoteAddress);else s.pipe(s)}).listen(port,addr,()=>{
const u=dgram.createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));u.bind(port,addr,()=>console.log('ready'))});`;
const CLIENT = `const [mode,host,port]=[process.argv[1],process.argv[2],+process.argv[3]];const fail=m=>{console.error(m);process.exit(1)};
setTimeout(()=>fail('timeout'),4000);
if(mode==='tcp'){const s=require('net').connect(port,host,()=>s.write('hello-tcp'));let out='';s.on('data',d=>{out+=d;s.end()});s.on('close',()=>{console.log(out);process.exit(0)});s.on('error',e=>fail(e.message))}
else{const u=require('dgram').createSocket('udp4');u.on('message',m=>{console.log(m.toString());process.exit(0)});u.send('hello-udp',port,host)}`;
// A steady stream: 512 B every 10 ms, echoed back; reports the longest silence and any error.
const STREAM = `const [host,port,dur]=[process.argv[1],+process.argv[2],+process.argv[3]];let last=0,maxGap=0,bytes=0,err=null,start=0;
const s=require('net').connect(port,host,()=>{start=last=Date.now();const iv=setInterval(()=>s.write(Buffer.alloc(512,7)),10);
setTimeout(()=>{clearInterval(iv);console.log(JSON.stringify({maxGap,bytes,err,sinceLast:Date.now()-last}));s.destroy();process.exit(0)},dur)});
s.on('data',d=>{const n=Date.now();maxGap=Math.max(maxGap,n-last);last=n;bytes+=d.length});s.on('error',e=>{err=e.code||e.message});s.on('close',()=>{err=err||'closed'});`;

// A third-party-style plugin with no imports (tokens match by name): through the Datapath it
// fills the from-container shaping slot with the slot_filler test object's deny program (which
// drops with "Policy denied" from any slot), and empties it.
const SLOT_PLUGIN = (objectPath: string) => `const t = (name, multiple = false) => ({ id: Symbol.for(name), name, multiple });
const DATAPATH = t('cilia.Datapath'), ROUTES = t('cilia.ApiRoutes', true);
export default Object.freeze({
  name: 'slot-tester', version: '0.0.1', apiVersion: '^1', provides: [ROUTES], requires: [DATAPATH],
  register(bind) {
    bind(ROUTES).toFactory((r) => [
      { method: 'POST', path: '/v1/test/slot', handler: async () => {
        await r.get(DATAPATH).installObjects('slot-tester', [{ spec: { object: ${JSON.stringify(objectPath)}, programs: { cil_policy_deny: { attach: 'from-container', slot: 'shaping' } } }, constants: {} }]);
        return { body: { installed: true } };
      } },
      { method: 'DELETE', path: '/v1/test/slot', handler: async () => {
        await r.get(DATAPATH).clearSlot('from-container', 'shaping');
        return { body: { cleared: true } };
      } },
    ]);
  },
});
`;


describe('endpoints on one node (real kernel, agent in a node netns)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-ep-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const stateDir = join(dir, 'state');
  const bpfRoot = testPinRoot(dir);
  const configFile = join(dir, 'agent.yaml');
  const children: ChildProcess[] = [];
  let agent: NetnsProcess | undefined;
  const created: Endpoint[] = [];

  function spawnAgent(): NetnsProcess {
    const agentProcess = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    children.push(agentProcess.child);
    return agentProcess;
  }

  async function waitReady(a: NetnsProcess, timeoutMs = 15_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      if (a.child.exitCode !== null) throw new Error(`agent exited: ${a.output()}`);
      try {
        const s = await api<AgentStatus>(socket, 'GET', '/v1/status');
        if (s.body.health === 'ok') return Date.now() - t0;
        if (s.body.health === 'failed' || s.body.health === 'degraded') throw new Error(`agent health ${s.body.health}: ${s.body.problems.join('; ')}`);
      } catch (err) {
        if ((err as Error).message.startsWith('agent health')) throw err;
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`agent not ready: ${a.output()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  function background(ns: string, args: string[]): Promise<ChildProcess> {
    const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve(child);
      });
      child.on('close', (code) => reject(new Error(`server in ${ns} exited (${code})`)));
      setTimeout(() => reject(new Error(`server in ${ns} not ready`)), 5000);
    });
  }

  async function createEndpoint(name: string, labels: Record<string, string> = {}): Promise<Endpoint> {
    const r = await api<Endpoint>(socket, 'POST', '/v1/endpoints', { name, namespace: K8S_NS, labels });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    created.push(r.body);
    return r.body;
  }

  const podNs = (e: Endpoint) => e.netns.replace('/run/netns/', '');

  beforeAll(async () => {
    sh('ip', ['netns', 'add', NODE_NS]);
    sh('ip', ['netns', 'add', OUT_NS]);
    sh('ip', ['-n', NODE_NS, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext0', 'netns', OUT_NS]);
    for (const [ns, addr] of [[NODE_NS, `${NODE_IP}/24`], [OUT_NS, `${OUT_IP}/24`]] as const) {
      sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', 'ext0']);
      sh('ip', ['-n', ns, 'link', 'set', 'ext0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['-n', NODE_NS, 'route', 'add', 'default', 'via', OUT_IP]);
    sh('ip', ['-n', OUT_NS, 'addr', 'add', `${REMOTE_IP}/32`, 'dev', 'lo']);
    const pluginDir = join(dir, 'slot-tester');
    mkdirSync(pluginDir);
    sh(process.execPath, [join(REPO, 'tools/bpf-build.mjs'), pluginDir, '--src', join(REPO, 'bpf/tests'), '--out', pluginDir, '--only', 'slot_filler']);
    writeFileSync(join(pluginDir, 'package.json'), JSON.stringify({ name: 'slot-tester', version: '0.0.1', type: 'module', main: 'index.js' }));
    writeFileSync(join(pluginDir, 'index.js'), SLOT_PLUGIN(join(pluginDir, 'slot_filler.o')));
    writeFileSync(
      configFile,
      stringify({
        agent: { apiSocket: socket, stateDir, metricsAddress: '', bpfRoot, nodeName: `e2e-${RUN}` },
        ipam: { podCIDRs: [POD_CIDR] },
        plugins: [pluginDir],
      }),
    );
    agent = spawnAgent();
    await waitReady(agent);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    tryRun('ip', ['netns', 'delete', OUT_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates endpoints with address, routes, neighbour, map entry and lease, and lists them', async () => {
    const a = await createEndpoint('a', { 'k8s:app': 'client' });
    const b = await createEndpoint('b', { 'k8s:app': 'server' });
    expect(a).toMatchObject({ id: 1, name: 'a', namespace: K8S_NS, state: 'ready', interfaceName: 'eth0', ipv4Gateway: '10.244.7.1', netns: `/run/netns/cilia_${K8S_NS}_a` });
    expect(b.id).toBe(2);
    expect(a.hostInterface).toMatch(/^lxc[0-9a-f]{12}$/);
    const addrs = JSON.parse(inNs(podNs(a), ['ip', '-j', 'addr', 'show', 'eth0']).stdout) as [{ addr_info: { local: string; prefixlen: number }[] }];
    expect(addrs[0].addr_info).toContainEqual(expect.objectContaining({ local: a.ipv4, prefixlen: 32 }));
    const routes = inNs(podNs(a), ['ip', 'route']).stdout;
    expect(routes).toContain('default via 10.244.7.1 dev eth0');
    expect(routes).toMatch(/10\.244\.7\.1 dev eth0 scope link/);
    expect(inNs(podNs(a), ['ip', 'neigh', 'show', '10.244.7.1']).stdout).toContain(`lladdr ${a.hostMac} PERMANENT`);
    expect(tryRun('ip', ['-n', NODE_NS, 'route', 'show', `${a.ipv4}/32`]).stdout).toContain(`dev ${a.hostInterface}`);
    const map = BpfMap.openPinned(join(bpfRoot, 'cilia_endpoints'), { key: datapathMaps.EndpointKey, value: datapathMaps.EndpointInfo });
    try {
      expect(map.lookup(a.ipv4!)).toMatchObject({ endpointId: a.id, mac: a.mac, hostMac: a.hostMac });
    } finally {
      map.close();
    }
    const leases = JSON.parse(readFileSync(join(stateDir, 'ipam/leases.json'), 'utf8')) as unknown;
    expect(JSON.stringify(leases)).toContain(a.ipv4);
    expect(existsSync(join(stateDir, 'endpoints', `${a.id}.json`))).toBe(true);

    const cli = tryRun(CLI, ['endpoint', 'list', '-o', 'json', '--socket', socket]);
    expect(cli.status, cli.stderr).toBe(0);
    const listed = JSON.parse(cli.stdout) as Endpoint[];
    expect(listed.map((e) => [e.id, e.name, e.ipv4, e.state])).toEqual([
      [a.id, 'a', a.ipv4, 'ready'],
      [b.id, 'b', b.ipv4, 'ready'],
    ]);
    for (const field of ['id', 'name', 'namespace', 'labels', 'ipv4', 'netns', 'hostInterface', 'identity', 'state', 'policyRevision']) {
      expect(listed[0]).toHaveProperty(field);
    }
    const table = tryRun(CLI, ['endpoint', 'list', '--socket', socket]).stdout;
    expect(table).toMatch(new RegExp(`^1\\s+${K8S_NS}\\s+a\\s+${a.ipv4!.replace(/\./g, '\\.')}\\s+${a.hostInterface}`, 'm'));
  }, 30_000);

  it('two endpoints reach each other over TCP, UDP and ICMP', async () => {
    const [a, b] = created;
    // The base programs sit on both host-side veths (names are cut to 15 characters by the kernel).
    for (const e of [a!, b!]) {
      expect(tcProgram(e.hostInterface, 'ingress')?.name).toBe('cil_from_contai');
      expect(tcProgram(e.hostInterface, 'egress')?.name).toBe('cil_to_containe');
    }
    await background(podNs(b!), [process.execPath, '-e', SERVER, 'echo', '7000']);
    const ping = inNs(podNs(a!), ['ping', '-c', '2', '-W', '2', b!.ipv4!]);
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    const tcp = inNs(podNs(a!), [process.execPath, '-e', CLIENT, 'tcp', b!.ipv4!, '7000']);
    expect(tcp.stdout.trim(), tcp.stderr).toBe('hello-tcp');
    const udp = inNs(podNs(a!), [process.execPath, '-e', CLIENT, 'udp', b!.ipv4!, '7000']);
    expect(udp.stdout.trim(), udp.stderr).toBe('hello-udp');
  }, 30_000);

  it('a plugin object fills a slot through the Datapath: its deny program drops pod traffic until the slot is cleared', async () => {
    const [a, b] = created;
    const ping = () => inNs(podNs(a!), ['ping', '-c', '1', '-W', '1', b!.ipv4!]).status;
    const metrics = PerCpuMap.openPinnedPerCpu(join(bpfRoot, 'cilia_metrics'), { key: datapathMaps.MetricsKey, value: datapathMaps.MetricsValue });
    const denied = () => (metrics.lookup({ reason: datapathMaps.DropReason.policyDenied, dir: datapathMaps.Direction.egress }) ?? []).reduce((n, v) => n + v.packets, 0);
    try {
      expect(ping()).toBe(0);
      const before = denied();
      expect((await api(socket, 'POST', '/v1/test/slot')).status).toBe(200);
      expect(ping()).not.toBe(0);
      expect(denied()).toBeGreaterThan(before);
      expect((await api(socket, 'DELETE', '/v1/test/slot')).status).toBe(200);
      expect(ping()).toBe(0);
    } finally {
      metrics.close();
    }
  }, 30_000);

  it('an endpoint reaches the host, and an address outside the node through masquerading', async () => {
    const [a] = created;
    expect(tcProgram('ext0', 'egress')?.name).toBe('cil_to_netdev');
    expect(tcProgram('ext0', 'ingress')?.name).toBe('cil_from_netdev');
    const host = inNs(podNs(a!), ['ping', '-c', '1', '-W', '2', NODE_IP]);
    expect(host.status, host.stdout + host.stderr).toBe(0);
    await background(OUT_NS, [process.execPath, '-e', SERVER, 'whoami', '7100', REMOTE_IP]);
    const out = inNs(podNs(a!), [process.execPath, '-e', CLIENT, 'tcp', REMOTE_IP, '7100']);
    // The outside world has no route to the pod CIDR: the answer proves the source was the node's.
    expect(out.stdout.trim(), out.stderr).toBe(NODE_IP);
    // UDP and ICMP echo come home only through the masquerade too.
    const udp = inNs(podNs(a!), [process.execPath, '-e', CLIENT, 'udp', REMOTE_IP, '7100']);
    expect(udp.stdout.trim(), udp.stderr).toBe('hello-udp');
    const ping = inNs(podNs(a!), ['ping', '-c', '2', '-W', '2', REMOTE_IP]);
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
  }, 30_000);

  it('keeps a TCP stream flowing while the agent is SIGKILLed and restarted; ids and IPs survive; a half-made endpoint is cleaned up', async () => {
    const [a, b] = created;
    await background(podNs(b!), [process.execPath, '-e', SERVER, 'echo', '7200']);
    const stream = spawn('ip', ['netns', 'exec', podNs(a!), process.execPath, '-e', STREAM, b!.ipv4!, '7200', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(stream);
    let out = '';
    stream.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const finished = new Promise((r) => stream.on('close', r));
    const before = tcProgram(a!.hostInterface, 'ingress');
    await new Promise((r) => setTimeout(r, 1200));
    agent!.child.kill('SIGKILL');
    await agent!.done;
    // What a crash in the middle of a create leaves: a state file still "regenerating", the
    // agent-made netns, the veth and the lease. The restarted agent must remove all of it.
    const half = { id: 50, ip: '10.244.7.200', link: 'lxc0000deadbeef', ns: `cilia_${K8S_NS}_half` };
    sh('ip', ['netns', 'add', half.ns]);
    sh('ip', ['-n', NODE_NS, 'link', 'add', half.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', half.ns]);
    writeFileSync(
      join(stateDir, 'endpoints', `${half.id}.json`),
      JSON.stringify({
        endpoint: { ...created[0]!, id: half.id, name: 'half', ipv4: half.ip, hostInterface: half.link, netns: `/run/netns/${half.ns}`, state: 'regenerating' },
        createdNetns: true,
        createdAt: new Date().toISOString(),
      }),
    );
    const leaseFile = join(stateDir, 'ipam/leases.json');
    const leases = JSON.parse(readFileSync(leaseFile, 'utf8')) as { version: 1; leases: { ip: string; owner: string }[] };
    leases.leases.push({ ...(leases.leases[0] as object), ip: half.ip, owner: `endpoint:${half.id}` } as { ip: string; owner: string });
    writeFileSync(leaseFile, JSON.stringify(leases));
    // An ipcache entry no endpoint owns any more (its pod went while the agent was away).
    const pinned = BpfMap.openPinned(join(bpfRoot, 'cilia_ipcache'), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
    const STALE = '10.244.7.201/32';
    pinned.update(STALE, { identity: 4242, tunnelEndpoint: '0.0.0.0', flags: 0 });
    // Watched through the restart: the live endpoints' entries must never be missing (no flush).
    // (LPM lookups fall back to shorter prefixes: exact keys are read from the key list.)
    const prefixes = () => new Set([...pinned.keys()].map(String));
    expect(prefixes().has(STALE)).toBe(true);
    const missing = new Set<string>();
    const watch = setInterval(() => {
      const present = prefixes();
      for (const e of created) if (!present.has(`${e.ipv4}/32`)) missing.add(e.ipv4!);
    }, 2);
    agent = spawnAgent();
    const readyMs = await waitReady(agent).finally(() => clearInterval(watch));
    try {
      expect(prefixes().has(STALE)).toBe(false);
      expect([...missing]).toEqual([]);
    } finally {
      pinned.close();
    }
    await finished;
    const result = JSON.parse(out) as { maxGap: number; bytes: number; err: string | null; sinceLast: number };
    expect(result.err).toBeNull();
    expect(result.maxGap).toBeLessThan(1000);
    expect(result.sinceLast).toBeLessThan(500);
    expect(result.bytes).toBeGreaterThan(100_000);
    // How fast it got ready is the startup benchmark's business (npm run bench -- startup), not a test's.
    // The restarted agent loaded its objects anew and swapped them in under the stream.
    const after = tcProgram(a!.hostInterface, 'ingress');
    expect(after?.name).toBe('cil_from_contai');
    expect(after?.id).not.toBe(before?.id);
    expect(tryRun('ip', ['-n', NODE_NS, 'link', 'show', half.link]).status).not.toBe(0);
    expect(existsSync(`/run/netns/${half.ns}`)).toBe(false);
    expect(existsSync(join(stateDir, 'endpoints', `${half.id}.json`))).toBe(false);
    expect(readFileSync(leaseFile, 'utf8')).not.toContain(half.ip);
    console.log(`restart: ready after ${readyMs} ms; stream max gap ${result.maxGap} ms, ${result.bytes} bytes echoed`);
    const listed = JSON.parse(tryRun(CLI, ['endpoint', 'list', '-o', 'json', '--socket', socket]).stdout) as Endpoint[];
    expect(listed.map((e) => [e.id, e.ipv4, e.hostInterface, e.state])).toEqual(created.map((e) => [e.id, e.ipv4, e.hostInterface, 'ready']));
    const ipcache = BpfMap.openPinned(join(bpfRoot, 'cilia_ipcache'), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
    try {
      for (const e of created) expect(ipcache.lookup(`${e.ipv4}/32`)?.identity).toBe(e.identity);
    } finally {
      ipcache.close();
    }
  }, 60_000);

  it('refuses bad requests naming the field, and a second endpoint for the same pod', async () => {
    const bad = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'Bad_Name', namespace: K8S_NS });
    expect(bad.status).toBe(400);
    expect(bad.body.path).toBe('name');
    const dup = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'a', namespace: K8S_NS });
    expect([dup.status, dup.body.path]).toEqual([409, 'name']);
    // A namespace name that is taken by someone else: refused, and left alone.
    sh('ip', ['netns', 'add', `cilia_${K8S_NS}_taken`]);
    const taken = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'taken', namespace: K8S_NS });
    expect([taken.status, taken.body.path]).toEqual([409, 'name']);
    expect(taken.body.error).toMatch(/exists already/);
    expect(existsSync(`/run/netns/cilia_${K8S_NS}_taken`)).toBe(true);
    expect((await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body).toHaveLength(2);
    const noNetns = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'x', namespace: K8S_NS, netns: '/run/netns/does-not-exist' });
    expect([noNetns.status, noNetns.body.path]).toEqual([400, 'netns']);
    // The agent's own namespace (here the node's) is never an endpoint's, by whatever path. (So is
    // the host's, pid 1's — not checked here: this sandbox cannot read /proc/1/ns.)
    for (const netns of [`/run/netns/${NODE_NS}`, `/proc/${agent!.child.pid}/ns/net`]) {
      const own = await api<{ error: string; path: string }>(socket, 'POST', '/v1/endpoints', { name: 'x', namespace: K8S_NS, netns });
      expect([own.status, own.body.path, own.body.error], JSON.stringify(own.body)).toEqual([400, 'netns', expect.stringMatching(/is the agent's own network namespace; an endpoint needs one of its own/)]);
    }
    const repeated = await api<{ error: string; path: string }>(socket, 'GET', '/v1/endpoints?containerId=a&containerId=b');
    expect([repeated.status, repeated.body.path]).toEqual([400, 'containerId']);
    expect((await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body).toHaveLength(2);
    const missing = await api<{ error: string }>(socket, 'GET', '/v1/endpoints/999');
    expect(missing.status).toBe(404);
  });

  it('cilia endpoint create, get and delete', () => {
    const cli = (args: string[]) => tryRun(CLI, [...args, '--socket', socket]);
    const made = cli(['endpoint', 'create', '--name', 'c', '--namespace', K8S_NS, '--labels', 'k8s:app=cli,tier=x', '-o', 'json']);
    expect(made.status, made.stderr).toBe(0);
    const ep = JSON.parse(made.stdout) as Endpoint;
    expect(ep).toMatchObject({ name: 'c', namespace: K8S_NS, labels: { 'k8s:app': 'cli', tier: 'x' }, state: 'ready' });
    expect(existsSync(ep.netns)).toBe(true);
    expect(cli(['endpoint', 'get', String(ep.id)]).stdout).toMatch(new RegExp(`^IPv4:\\s+${ep.ipv4!.replace(/\./g, '\\.')}$`, 'm'));
    expect((parse(cli(['endpoint', 'get', String(ep.id), '-o', 'yaml']).stdout) as Endpoint).hostInterface).toBe(ep.hostInterface);
    const dup = cli(['endpoint', 'create', '--name', 'c', '--namespace', K8S_NS]);
    expect(dup.status).toBe(1);
    expect(dup.stderr).toMatch(/already has endpoint/);
    expect(cli(['endpoint', 'create', '--name', 'd', '--labels', 'novalue']).status).toBe(2);
    const del = cli(['endpoint', 'delete', String(ep.id)]);
    expect(del.status, del.stderr).toBe(0);
    expect(existsSync(ep.netns)).toBe(false);
    const gone = cli(['endpoint', 'get', String(ep.id)]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/not found/);
  });

  it('delete removes link, netns, route, map entry, ipcache entry and lease', async () => {
    const b = created[1]!;
    const del = await api<{ deleted: boolean }>(socket, 'DELETE', `/v1/endpoints/${b.id}`);
    expect(del).toEqual({ status: 200, body: { deleted: true } });
    expect(tryRun('ip', ['-n', NODE_NS, 'link', 'show', b.hostInterface]).status).not.toBe(0);
    expect(existsSync(b.netns)).toBe(false);
    expect(tryRun('ip', ['-n', NODE_NS, 'route', 'show', `${b.ipv4}/32`]).stdout.trim()).toBe('');
    const map = BpfMap.openPinned(join(bpfRoot, 'cilia_endpoints'), { key: datapathMaps.EndpointKey, value: datapathMaps.EndpointInfo });
    const ipcache = BpfMap.openPinned(join(bpfRoot, 'cilia_ipcache'), { key: datapathMaps.IpcacheKey, value: datapathMaps.IpcacheValue });
    try {
      expect(map.lookup(b.ipv4!)).toBeUndefined();
      expect([...ipcache.keys()]).not.toContain(`${b.ipv4}/32`);
      expect([...ipcache.keys()]).toContain(`${created[0]!.ipv4}/32`);
    } finally {
      map.close();
      ipcache.close();
    }
    expect(readFileSync(join(stateDir, 'ipam/leases.json'), 'utf8')).not.toContain(`"${b.ipv4}"`);
    expect(existsSync(join(stateDir, 'endpoints', `${b.id}.json`))).toBe(false);
    expect((await api(socket, 'DELETE', `/v1/endpoints/${b.id}`)).status).toBe(404);
    created.splice(1, 1);
  });

  it('a clean stop with no endpoint left takes its programs off the egress device', async () => {
    for (const e of created.splice(0)) expect((await api(socket, 'DELETE', `/v1/endpoints/${e.id}`)).status).toBe(200);
    expect(tcProgram('ext0', 'egress')?.name).toBe('cil_to_netdev');
    agent!.child.kill('SIGTERM');
    expect(await agent!.done).toBe(0);
    expect(tcProgram('ext0', 'egress')).toBeUndefined();
    expect(tcProgram('ext0', 'ingress')).toBeUndefined();
    // Pinned maps stay for the next agent.
    expect(existsSync(join(bpfRoot, 'cilia_ct'))).toBe(true);
  });
});
