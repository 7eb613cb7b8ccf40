// The bandwidth manager in the real agent (in a private "node" network namespace): on this kind
// of kernel, without sch_fq, `bandwidth.enabled: true` is refused with exit 2 naming the qdisc
// and `auto` runs with egress off and says so; Pods' ingress-bandwidth annotations from the
// manifest directory reach cilia_bandwidth, changes apply in place, a refused annotation names
// its field path and changes nothing, and `cilia bpf bandwidth list` shows it all.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BandwidthReport } from '@cilia/api-client';
import type { AgentStatus, Endpoint } from '@cilia/core';
import { kernelHasFq } from '@cilia/plugin-bandwidth-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { AGENT_MAIN, api, REPO, spawnInNetns, testPinRoot, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-bw-${RUN}`;
const K8S_NS = `bw${RUN}`;
const CLI = join(REPO, 'node_modules/.bin/cilia');
const tryRun = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const podYaml = (name: string, annotations: Record<string, string> = {}) =>
  stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: K8S_NS, annotations }, spec: { containers: [{ name: 'main', image: 'busybox' }] } });

describe('bandwidth manager (real agent, manifest Pods)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-bandwidth-e2e-'));
  const manifests = join(dir, 'manifests');
  const socket = join(dir, 'cilia.sock');
  const bpfRoot = testPinRoot(dir);
  const config = (bandwidth: Record<string, unknown>) =>
    stringify({
      agent: { apiSocket: socket, stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot, nodeName: `bw-${RUN}` },
      ipam: { podCIDRs: ['10.244.31.0/24'] },
      manifests: { directory: manifests, debounceMs: 50 },
      plugins: ['@cilia/plugin-bandwidth-manager'],
      // The device fq would go on: a link of the node namespace, never the machine's own.
      bandwidth: { devices: ['ext0'], ...bandwidth },
    });
  let agent: NetnsProcess | undefined;

  const report = async () => (await api<BandwidthReport>(socket, 'GET', '/v1/bandwidth')).body;
  const status = async () => (await api<AgentStatus>(socket, 'GET', '/v1/status')).body;
  const endpointOf = async (name: string) => (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body.find((e) => e.namespace === K8S_NS && e.name === name);

  beforeAll(() => {
    mkdirSync(manifests);
    const add = tryRun('ip', ['netns', 'add', NODE_NS]);
    if (add.status !== 0) throw new Error(add.stderr);
    tryRun('ip', ['-n', NODE_NS, 'link', 'set', 'lo', 'up']);
    tryRun('ip', ['-n', NODE_NS, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
    tryRun('ip', ['-n', NODE_NS, 'addr', 'add', '172.31.231.1/24', 'dev', 'ext0']);
    tryRun('ip', ['-n', NODE_NS, 'link', 'set', 'ext0', 'up']);
    tryRun('ip', ['-n', NODE_NS, 'route', 'add', 'default', 'via', '172.31.231.2']);
  });

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    for (const ns of tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns.startsWith(`cilia_${K8S_NS}_`)) tryRun('ip', ['netns', 'delete', ns]);
    }
    tryRun('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('enabled: true on a kernel without sch_fq exits 2 naming the missing qdisc, and installs nothing', async () => {
    const fq = await kernelHasFq();
    writeFileSync(join(dir, 'true.yaml'), config({ enabled: true }));
    const run = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', join(dir, 'true.yaml')]);
    if (fq) {
      // A kernel with fq: the agent starts with egress on (the CI machine has none; see README).
      await until('the agent', async () => ((await status().catch(() => undefined))?.health === 'ok' ? true : undefined));
      expect((await report()).egress).toMatchObject({ enabled: true, devices: ['ext0'] });
      run.child.kill('SIGTERM');
      expect(await run.done).toBe(0);
      return;
    }
    expect(await run.done).toBe(2);
    expect(run.output()).toMatch(/bandwidth\.enabled: true, but this kernel has no fq qdisc \(sch_fq\)/);
    // Nothing half-configured: no slot filled, ext0's qdisc left alone.
    expect(tryRun('ip', ['-n', NODE_NS, '-j', 'qdisc', 'show', 'dev', 'ext0']).stdout).not.toContain('"fq"');
  }, 30_000);

  it('auto: egress off for want of sch_fq (status and log say so), ingress limits from the annotations', async () => {
    writeFileSync(join(manifests, 'limited.yaml'), podYaml('limited', { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '5M' }));
    writeFileSync(join(manifests, 'free.yaml'), podYaml('free'));
    writeFileSync(join(dir, 'auto.yaml'), config({ bbr: true }));
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', join(dir, 'auto.yaml')]);
    const limited = await until('the limited pod', async () => {
      const e = await endpointOf('limited').catch(() => undefined);
      return e?.state === 'ready' ? e : undefined;
    });
    const r = await until('its limit', async () => {
      const b = await report().catch(() => undefined);
      return b?.endpoints.some((e) => e.endpointId === limited.id) ? b : undefined;
    });
    const fq = await kernelHasFq();
    expect(r.egress.enabled).toBe(fq);
    expect(r.ingress.enabled).toBe(true);
    expect(r.endpoints).toEqual([
      { endpointId: limited.id, namespace: K8S_NS, name: 'limited', ingress: { bitsPerSecond: 10e6, drops: 0 }, ...(fq ? { egress: { bitsPerSecond: 5e6, drops: 0 } } : {}) },
    ]);
    expect(r.bbr).toBe(true);
    const s = await status();
    if (!fq) {
      expect(s.health).toBe('ok');
      expect(s.notes).toEqual([expect.stringMatching(/^bandwidth-manager: egress bandwidth \(EDT\) off: this kernel has no fq qdisc \(sch_fq\)/)]);
      expect(agent.output()).toMatch(/"msg":"egress bandwidth \(EDT\) off: this kernel has no fq qdisc/);
      expect(s.plugins.find((p) => p.name === '@cilia/plugin-bandwidth-manager')?.slots).toEqual([
        { attach: 'to-container', slot: 'shaping', object: 'bandwidth_ingress', program: 'cil_bandwidth_ingress' },
      ]);
    }
  }, 40_000);

  it('applies an annotation change in place, refuses a bad one with its field path (the limit kept), and drops a removed one', async () => {
    const limited = (await endpointOf('limited'))!;
    writeFileSync(join(manifests, 'limited.yaml'), podYaml('limited', { 'kubernetes.io/ingress-bandwidth': '1G' }));
    await until('the new rate', async () => ((await report()).endpoints[0]?.ingress?.bitsPerSecond === 1e9 ? true : undefined));
    expect((await endpointOf('limited'))?.id).toBe(limited.id);

    writeFileSync(join(manifests, 'limited.yaml'), podYaml('limited', { 'kubernetes.io/ingress-bandwidth': '10X' }));
    const refused = await until('the refusal', async () => ((await report()).invalid.length ? await report() : undefined));
    expect(refused.invalid).toEqual([
      { pod: `${K8S_NS}/limited`, path: 'metadata.annotations["kubernetes.io/ingress-bandwidth"]', reason: '"10X" is not a Kubernetes quantity (e.g. 10M, 1G, 500k)' },
    ]);
    expect(refused.endpoints[0]?.ingress?.bitsPerSecond).toBe(1e9);
    const s = await status();
    expect(s.health).toBe('degraded');
    expect(s.problems).toContain(`bandwidth-manager: Pod ${K8S_NS}/limited: metadata.annotations["kubernetes.io/ingress-bandwidth"]: "10X" is not a Kubernetes quantity (e.g. 10M, 1G, 500k)`);

    const cli = spawnSync(CLI, ['bpf', 'bandwidth', 'list', '--socket', socket], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`^Ingress: +on \\(eBPF token bucket\\)$`, 'm'));
    expect(cli.stdout).toMatch(new RegExp(`^${limited.id} +${K8S_NS}/limited +(<none>|5Mbit/s) +1Gbit/s +0$`, 'm'));
    const json = spawnSync(CLI, ['bpf', 'bandwidth', 'list', '--socket', socket, '-o', 'json'], { encoding: 'utf8' });
    expect((JSON.parse(json.stdout) as BandwidthReport).endpoints[0]?.endpointId).toBe(limited.id);

    writeFileSync(join(manifests, 'limited.yaml'), podYaml('limited'));
    await until('the limit gone', async () => ((await report()).endpoints.length === 0 ? true : undefined));
    expect((await status()).health).toBe('ok');
    agent!.child.kill('SIGTERM');
    expect(await agent!.done).toBe(0);
  }, 40_000);

  it("after a restart: BBR again in the pods' namespaces, and the entry of an endpoint gone meanwhile deleted", async () => {
    // A new namespace starts with the node's choice (BBR on this machine): set another first
    // (reno: a namespace may take only what the node allows, tcp_allowed_congestion_control).
    const cc = (netns: string) => tryRun('ip', ['netns', 'exec', netns, 'sysctl', '-n', 'net.ipv4.tcp_congestion_control']).stdout.trim();
    const free = `cilia_${K8S_NS}_free`;
    expect(tryRun('ip', ['netns', 'exec', free, 'sysctl', '-qw', 'net.ipv4.tcp_congestion_control=reno']).status).toBe(0);
    expect(cc(free)).toBe('reno');
    // While the agent is away, an entry of an endpoint that no longer exists (id 999, ingress).
    const map = join(bpfRoot, 'cilia_bandwidth');
    const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0'));
    const key = hex([0xe7, 0x03, 0, 0, 0, 0, 0, 0]);
    const value = hex([0xe8, 0x03, ...new Array(30).fill(0)]);
    expect(tryRun('bpftool', ['map', 'update', 'pinned', map, 'key', 'hex', ...key, 'value', 'hex', ...value]).status).toBe(0);
    const entries = () => (JSON.parse(tryRun('bpftool', ['-j', 'map', 'dump', 'pinned', map]).stdout || '[]') as unknown[]).length;
    expect(entries()).toBe(1);
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', join(dir, 'auto.yaml')]);
    await until('BBR in the pod', async () => (cc(free) === 'bbr' ? true : undefined));
    // Pruned once the Pods were listed: one delete, the map itself kept.
    await until('the stale entry gone', async () => (entries() === 0 ? true : undefined));
    agent.child.kill('SIGTERM');
    expect(await agent.done).toBe(0);
  }, 30_000);
});
