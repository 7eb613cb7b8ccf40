// Policy realization on one node, for real: the agent runs in a private "node" network
// namespace (nsenter --net; bpffs and /run/netns stay shared), pods are namespaces behind
// veths, packets are real. What it shows: under `always` nothing passes for an endpoint
// without an allowing policy (and the BPF program itself drops an endpoint the policy map has
// no state for); under `default` a new pod's first packet already meets its final policy
// (written before its programs attach); an endpoint whose policy overflows its quota fails
// closed, `cilia status` names it, and it recovers when the policy shrinks.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentStatus, Endpoint, IpCacheEntry } from '@cilia/core';
import { BpfMap, codec, PerCpuMap } from '@cilia/bpf';
import { datapathMaps } from '@cilia/datapath';
import { AGENT_MAIN, api, REPO, spawnInNetns, testPinRoot, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-pol-${RUN}`;
const K8S_NS = `pol${RUN}`;
const CLI = join(REPO, 'node_modules/.bin/cilia');

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const inNs = (ns: string, args: string[]) => tryRun('ip', ['netns', 'exec', ns, ...args]);

// `serve PORT`: echoes TCP and UDP on PORT. `tcp|udp HOST PORT`: one round trip, exit 0 when
// the echo came back, 1 after 1.5 s without it.
const PROBE = `const [mode,a,b]=process.argv.slice(1);
if(mode==='serve'){const p=+a;require('net').createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(p,()=>{const u=require('dgram').createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));u.bind(p,()=>console.log('ready'))})}
else{setTimeout(()=>process.exit(1),1500);if(mode==='tcp'){const s=require('net').connect(+b,a,()=>s.write('x'));s.on('data',()=>process.exit(0));s.on('error',()=>process.exit(1))}
else{const u=require('dgram').createSocket('udp4');u.on('message',()=>process.exit(0));u.send('x',+b,a)}}`;
// Counts UDP datagrams on PORT; prints each one's sequence number as it arrives.
const COUNTER = `const u=require('dgram').createSocket('udp4');u.on('message',m=>console.log('got '+m.readUInt32BE(0)));u.bind(+process.argv[1],()=>console.log('ready'))`;
// Waits for "HOST PORT" on stdin, then sends datagrams numbered 1, 2, … every 2 ms for 1.5 s.
const SENDER = `const u=require('dgram').createSocket('udp4');console.log('ready');process.stdin.once('data',d=>{const [h,p]=d.toString().trim().split(' ');let n=0;
const send=()=>{const b=Buffer.alloc(4);b.writeUInt32BE(++n);u.send(b,+p,h)};send();const iv=setInterval(send,2);setTimeout(()=>{clearInterval(iv);console.log('sent '+n);process.exit(0)},1500)})`;

interface PolicyView {
  revision: number;
  enforcement: { ingress: string; egress: string };
  failClosed?: string;
  entries: { identity: number; direction: string; protocol: number; port: number; endPort: number; verdict: string }[];
}

const cnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: K8S_NS }, spec });

/** One agent in the node namespace, with its own socket, state and pins. */
class NodeAgent {
  readonly dir = mkdtempSync(join(tmpdir(), 'cilia-pol-e2e-'));
  readonly socket = join(this.dir, 'cilia.sock');
  readonly bpfRoot = testPinRoot(this.dir);
  process?: NetnsProcess;

  /** Each agent its own pod CIDR: the node namespace keeps the first agent's routes. */
  async start(podCIDR: string, config: Record<string, unknown>): Promise<void> {
    const file = join(this.dir, 'agent.yaml');
    const agent = { apiSocket: this.socket, stateDir: join(this.dir, 'state'), metricsAddress: '', bpfRoot: this.bpfRoot, nodeName: `pol-${RUN}` };
    writeFileSync(file, stringify({ ...config, agent, ipam: { podCIDRs: [podCIDR] } }));
    this.process = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', file]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.process.child.exitCode !== null) throw new Error(`agent exited: ${this.process.output()}`);
      const status = await api<AgentStatus>(this.socket, 'GET', '/v1/status').catch(() => undefined);
      if (status?.body.health === 'ok') return;
      if (status && status.body.health !== 'starting') throw new Error(`agent health ${status.body.health}: ${status.body.problems.join('; ')}`);
      if (Date.now() > deadline) throw new Error(`agent not ready: ${this.process.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async createEndpoint(name: string, app: string, netns?: string): Promise<Endpoint> {
    const r = await api<Endpoint>(this.socket, 'POST', '/v1/endpoints', { name, namespace: K8S_NS, labels: { 'k8s:app': app }, ...(netns ? { netns } : {}) });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }

  /** An endpoint serving the probes. */
  async createServing(name: string, app: string): Promise<Endpoint> {
    const e = await this.createEndpoint(name, app);
    await startIn(podNs(e), PROBE, ['serve', '8000']);
    return e;
  }

  async importPolicy(...documents: unknown[]): Promise<number> {
    const r = await api<{ revision: number }>(this.socket, 'POST', '/v1/policy', { documents });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.revision;
  }

  async deletePolicy(name: string): Promise<number> {
    const r = await api<{ revision: number }>(this.socket, 'DELETE', `/v1/policy?name=${name}&namespace=${K8S_NS}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.revision;
  }

  async policyOf(id: number): Promise<PolicyView> {
    const r = await api<Endpoint & { policy: PolicyView }>(this.socket, 'GET', `/v1/endpoints/${id}`);
    expect(r.status).toBe(200);
    return r.body.policy;
  }

  /** Polls until every endpoint reports revision `rev` (what `cilia policy wait` does). */
  async waitRevision(rev: number): Promise<void> {
    await expect.poll(async () => (await api<Endpoint[]>(this.socket, 'GET', '/v1/endpoints')).body.every((e) => e.policyRevision >= rev), { timeout: 10_000 }).toBe(true);
  }

  async stop(): Promise<void> {
    if (!this.process) return;
    const { child } = this.process;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.process.done;
  }

  cleanup(): void {
    rmSync(this.bpfRoot, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const podNs = (e: Endpoint) => e.netns.replace('/run/netns/', '');
const children: ChildProcess[] = [];

/** Starts `node -e script args` in a pod namespace; resolves once it printed "ready". */
function startIn(ns: string, script: string, args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes('ready')) {
        clearInterval(timer);
        resolve({ child, output: () => out });
      }
    }, 10);
    child.on('close', (code) => {
      clearInterval(timer);
      reject(new Error(`${script.slice(0, 40)}… in ${ns} exited (${code}): ${out}`));
    });
  });
}

/** Which of TCP, UDP (port 8000) and ICMP get from `from` to `to` and back. */
function probe(from: Endpoint, to: Endpoint): { tcp: boolean; udp: boolean; icmp: boolean } {
  const run = (mode: string) => inNs(podNs(from), [process.execPath, '-e', PROBE, mode, to.ipv4!, '8000']).status === 0;
  return { tcp: run('tcp'), udp: run('udp'), icmp: inNs(podNs(from), ['ping', '-c', '1', '-W', '1', to.ipv4!]).status === 0 };
}
const all = { tcp: true, udp: true, icmp: true };
const none = { tcp: false, udp: false, icmp: false };

/** Packets dropped for `reason` in `dir`, summed over CPUs. */
function drops(bpfRoot: string, reason: number, dir: number): number {
  const metrics = PerCpuMap.openPinnedPerCpu(join(bpfRoot, 'cilia_metrics'), { key: datapathMaps.MetricsKey, value: datapathMaps.MetricsValue });
  try {
    return (metrics.lookup({ reason, dir }) ?? []).reduce((n, v) => n + v.packets, 0);
  } finally {
    metrics.close();
  }
}

beforeAll(() => {
  sh('ip', ['netns', 'add', NODE_NS]);
  sh('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
    if (ns.startsWith(`cilia_${K8S_NS}_`) || ns.startsWith(`pol-pod-${RUN}`)) tryRun('ip', ['netns', 'delete', ns]);
  }
  tryRun('ip', ['netns', 'delete', NODE_NS]);
});

describe('policy enforcement `always`', () => {
  const agent = new NodeAgent();
  let a: Endpoint;
  let b: Endpoint;

  beforeAll(async () => {
    await agent.start('10.244.31.0/24', { policy: { enforcement: 'always' }, datapath: { masquerade: false } });
    a = await agent.createServing('a', 'client');
    b = await agent.createServing('b', 'server');
  }, 60_000);

  afterAll(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('passes nothing between endpoints that no policy allows (TCP, UDP, ICMP); an allowing policy opens exactly that', async () => {
    expect(await agent.policyOf(b.id)).toMatchObject({ enforcement: { ingress: 'enforce', egress: 'enforce' } });
    expect(probe(a, b)).toEqual(none);
    const rev = await agent.importPolicy(
      cnp('client-out', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toEndpoints: [{ matchLabels: { app: 'server' } }] }] }),
      cnp('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }] }),
    );
    await agent.waitRevision(rev);
    expect(probe(a, b)).toEqual(all);
    expect(probe(b, a)).toEqual(none); // nothing allows b's egress nor a's ingress
    const view = await agent.policyOf(b.id);
    expect(view.revision).toBeGreaterThanOrEqual(rev);
    expect(view.entries).toContainEqual(expect.objectContaining({ identity: a.identity, direction: 'ingress', protocol: 0, port: 0, verdict: 'allow' }));
  }, 60_000);

  it('a policy CIDR naming a pod’s own address leaves the pod its identity, in the ipcache and on the wire, also once the policy goes', async () => {
    const entryOfA = async () => (await api<IpCacheEntry[]>(agent.socket, 'GET', '/v1/ipcache')).body.find((e) => e.prefix === `${a.ipv4}/32`);
    const rev = await agent.importPolicy(cnp('cidr-of-a', { endpointSelector: { matchLabels: { app: 'server' } }, egress: [{ toCIDR: [`${a.ipv4}/32`] }] }));
    await agent.waitRevision(rev);
    // The server's egress entry names a's address by its CIDR identity…
    expect((await agent.policyOf(b.id)).entries.some((e) => e.direction === 'egress' && e.identity >= 16_777_216)).toBe(true);
    // …while a keeps its own: server-in (fromEndpoints app=client) still admits it.
    expect(await entryOfA()).toMatchObject({ identity: a.identity, source: 'local' });
    expect(probe(a, b)).toEqual(all);
    await agent.waitRevision(await agent.deletePolicy('cidr-of-a'));
    expect(await entryOfA()).toMatchObject({ identity: a.identity, source: 'local' });
    expect(probe(a, b)).toEqual(all);
  }, 60_000);

  it('the program drops traffic of an endpoint the policy map has no state for (POLICY_NOT_REALIZED)', () => {
    expect(probe(a, b).icmp).toBe(true);
    const records = BpfMap.openPinned(join(agent.bpfRoot, 'cilia_policy_endpoints'), { key: codec.u32, value: datapathMaps.PolicyEndpointValue });
    try {
      const record = records.lookup(b.id);
      expect(record).toMatchObject({ ingress: datapathMaps.PolicyModeCode.enforce });
      const before = drops(agent.bpfRoot, datapathMaps.DropReason.policyNotRealized, datapathMaps.Direction.ingress);
      records.delete(b.id); // as if b's policy had never been written
      expect(probe(a, b)).toEqual(none);
      expect(drops(agent.bpfRoot, datapathMaps.DropReason.policyNotRealized, datapathMaps.Direction.ingress)).toBeGreaterThan(before);
      records.update(b.id, record!);
      expect(probe(a, b)).toEqual(all);
    } finally {
      records.close();
    }
  }, 30_000);
});

describe('policy enforcement `default`', () => {
  const agent = new NodeAgent();
  let sender: Endpoint;
  let big: Endpoint;

  beforeAll(async () => {
    await agent.start('10.244.32.0/24', { policy: { enforcement: 'default' }, datapath: { masquerade: false, policy: { maxEntriesPerEndpoint: 4 } } });
    sender = await agent.createServing('sender', 'sender');
    big = await agent.createServing('big', 'big');
  }, 60_000);

  afterAll(async () => {
    await agent.stop();
    agent.cleanup();
  });

  /**
   * Creates a pod in a namespace made here (as CNI would hand one over), with a UDP counter
   * already listening in it; a sender in another pod fires the moment the create call returns.
   */
  async function streamAtCreate(name: string, app: string): Promise<{ endpoint: Endpoint; received: number[]; sent: number }> {
    const ns = `pol-pod-${RUN}-${name}`;
    sh('ip', ['netns', 'add', ns]);
    const counter = await startIn(ns, COUNTER, ['9000']);
    const fire = await startIn(podNs(sender), SENDER, []);
    const endpoint = await agent.createEndpoint(name, app, `/run/netns/${ns}`);
    fire.child.stdin!.write(`${endpoint.ipv4} 9000\n`);
    await new Promise((r) => fire.child.on('close', r));
    await new Promise((r) => setTimeout(r, 300)); // the last datagrams in flight
    counter.child.kill('SIGKILL');
    const received = [...counter.output().matchAll(/got (\d+)/g)].map((m) => Number(m[1]));
    const sent = Number(/sent (\d+)/.exec(fire.output())?.[1] ?? 0);
    return { endpoint, received, sent };
  }

  it("a new pod's first packet already meets its policy: a denied pod gets none of a stream started as its create returns, an allowed one gets the first", async () => {
    const rev = await agent.importPolicy(
      cnp('deny-new', { endpointSelector: { matchLabels: { app: 'new' } }, ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'sender' } }] }] }),
      cnp('allow-ok', { endpointSelector: { matchLabels: { app: 'ok' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'sender' } }] }] }),
    );
    const denied = await streamAtCreate('fresh', 'new');
    expect(denied.endpoint.policyRevision).toBeGreaterThanOrEqual(rev);
    expect(denied.sent).toBeGreaterThan(100);
    expect(denied.received).toEqual([]);
    const view = await agent.policyOf(denied.endpoint.id);
    expect(view.enforcement.ingress).toBe('enforce');
    expect(view.entries).toContainEqual(expect.objectContaining({ identity: sender.identity, direction: 'ingress', verdict: 'deny' }));

    const allowed = await streamAtCreate('welcome', 'ok');
    expect(allowed.sent).toBeGreaterThan(100);
    expect(allowed.received[0]).toBe(1);
    expect(allowed.received.length).toBeGreaterThan(allowed.sent / 2);
  }, 60_000);

  it('an endpoint whose policy needs more entries than allowed fails closed, status names it, and it recovers when the policy goes', async () => {
    expect(probe(sender, big)).toEqual(all);
    const ports = [8000, 8001, 8002, 8003, 8004, 8005].map((port) => ({ port: String(port), protocol: 'TCP' }));
    const rev = await agent.importPolicy(cnp('too-big', { endpointSelector: { matchLabels: { app: 'big' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'sender' } }], toPorts: [{ ports }] }] }));
    await agent.waitRevision(rev);
    const status = (await api<AgentStatus>(agent.socket, 'GET', '/v1/status')).body;
    expect(status.health).toBe('degraded');
    const problem = status.problems.find((p) => p.includes(`endpoint ${big.id} (${K8S_NS}/big)`));
    expect(problem, status.problems.join('\n')).toMatch(/exceed the per-endpoint quota of 4.*traffic is dropped \(fail closed\)/);
    const cli = tryRun(CLI, ['status', '--socket', agent.socket]);
    expect(cli.stdout).toContain(`endpoint ${big.id} (${K8S_NS}/big)`);
    expect(await agent.policyOf(big.id)).toMatchObject({ enforcement: { ingress: 'deny-all', egress: 'deny-all' }, failClosed: expect.stringContaining('quota') });
    // Even the port the policy allows: nothing of the endpoint passes, either way.
    expect(probe(sender, big)).toEqual(none);
    expect(probe(big, sender)).toEqual(none);

    await agent.waitRevision(await agent.deletePolicy('too-big'));
    expect(probe(sender, big)).toEqual(all);
    const after = (await api<AgentStatus>(agent.socket, 'GET', '/v1/status')).body;
    expect(after.problems.filter((p) => p.includes('fail closed'))).toEqual([]);
    expect((await agent.policyOf(big.id)).failClosed).toBeUndefined();
  }, 60_000);
});

// A TCP server on 8100 that echoes, and writes "pushed" to every connection when its stdin says
// "push" (the server speaking first, as a push or a keep-alive probe does).
const PUSH_SERVER = `const c=[];require('net').createServer(s=>{c.push(s);s.on('error',()=>{});s.on('data',d=>s.write(d))}).listen(8100,()=>console.log('ready'));
process.stdin.on('data',d=>{if(d.toString().includes('push'))for(const s of c)s.write('pushed\\n')})`;
// One connection to HOST:8100; stdin lines are sent on it, every chunk received is printed.
const LINE_CLIENT = `const s=require('net').connect(+process.argv[2],process.argv[1],()=>console.log('ready'));s.on('error',e=>console.log('error '+e.message));
s.on('data',d=>console.log('got '+d.toString().trim().replace(/\\n/g,' ')));process.stdin.on('data',d=>s.write(d))`;
// COUNT UDP datagrams to HOST:PORT, each from its own socket (so its own source port: a new flow).
const FLOOD = `const d=require('dgram');const [h,p,n]=process.argv.slice(1);let done=0;
for(let i=0;i<+n;i++){const u=d.createSocket('udp4');u.send('x',+p,h,()=>{u.close();if(++done===+n){console.log('sent '+done);process.exit(0)}})}`;

describe('a full conntrack table (datapath.conntrack.maxEntries: 256)', () => {
  const agent = new NodeAgent();
  let client: Endpoint;
  let server: Endpoint;
  let flooder: Endpoint;

  beforeAll(async () => {
    await agent.start('10.244.34.0/24', { policy: { enforcement: 'default' }, datapath: { masquerade: false, conntrack: { maxEntries: 256 } } });
    client = await agent.createEndpoint('ct-client', 'client');
    server = await agent.createEndpoint('ct-server', 'server');
    flooder = await agent.createEndpoint('ct-flood', 'flood');
  }, 60_000);

  afterAll(async () => {
    await agent.stop();
    agent.cleanup();
  });

  it('a flood of new flows from one pod recycles its own entries: another pod\'s idle connection keeps its entry and its policy', async () => {
    await agent.waitRevision(
      await agent.importPolicy(
        cnp('server-in', { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }, { matchLabels: { app: 'flood' } }] }] }),
        // The client takes nothing new from anyone: the server reaches it only as replies, so a
        // lost entry would show as the server's push being dropped.
        cnp('client-in', { endpointSelector: { matchLabels: { app: 'client' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'nobody' } }] }] }),
      ),
    );
    const ct = BpfMap.openPinned(join(agent.bpfRoot, 'cilia_ct'), { key: datapathMaps.CtKey, value: datapathMaps.CtValue });
    try {
      expect(ct.info.maxEntries).toBe(256);
      const srv = await startIn(podNs(server), PUSH_SERVER, []);
      const cli = await startIn(podNs(client), LINE_CLIENT, [server.ipv4!, '8100']);
      const said = (text: string) => expect.poll(() => cli.output(), { timeout: 10_000 }).toContain(text);
      cli.child.stdin!.write('hello\n');
      await said('got hello');
      const connection = (k: { saddr: string; daddr: string; dport: number; proto: number }) => k.saddr === client.ipv4 && k.daddr === server.ipv4 && k.dport === 8100 && k.proto === 6;
      expect([...ct.keys()].some(connection)).toBe(true);
      const createFailed = () => drops(agent.bpfRoot, datapathMaps.DropReason.ctCreateFailed, datapathMaps.Direction.egress) + drops(agent.bpfRoot, datapathMaps.DropReason.ctCreateFailed, datapathMaps.Direction.ingress);
      const failedBefore = createFailed();

      // 8000 new flows from the flooder, a sender on each CPU: 31 times the table.
      for (let wave = 0; wave < 2; wave++) {
        const floods = await Promise.all(
          [0, 1].map(
            (cpu) =>
              new Promise<string>((resolve) => {
                const p = spawn('ip', ['netns', 'exec', podNs(flooder), 'taskset', '-c', String(cpu), process.execPath, '-e', FLOOD, server.ipv4!, '9000', '2000'], { stdio: ['ignore', 'pipe', 'ignore'] });
                let out = '';
                p.stdout.on('data', (d: Buffer) => (out += d.toString()));
                p.on('close', () => resolve(out));
              }),
          ),
        );
        for (const out of floods) expect(out).toContain('sent 2000');
      }
      const keys = [...ct.keys()];
      const flood = keys.filter((k) => k.saddr === flooder.ipv4).length;
      console.log(`conntrack: 8000 new flows through 256 entries: ${keys.length} entries now (${flood} of the flooder, so ≥ ${8000 - flood} evicted), the idle connection's kept`);
      expect(keys.length).toBeLessThanOrEqual(256);
      expect(flood).toBeGreaterThan(0);
      // Every flow got its entry: nothing failed to be created, eviction made the room.
      expect(createFailed()).toBe(failedBefore);
      expect(keys.some(connection)).toBe(true);

      // The server speaks first and is still a reply: the client's policy lets it in.
      srv.child.stdin!.write('push\n');
      await said('pushed');
      cli.child.stdin!.write('again\n');
      await said('got again');
      expect(cli.output()).not.toContain('error');
    } finally {
      ct.close();
    }
  }, 60_000);
});
