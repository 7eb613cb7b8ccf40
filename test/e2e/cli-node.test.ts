// The operator's commands on a node of its own — a network namespace whose egress device is one
// end of a veth pair to an "outside" namespace, so the agent's programs sit on a device and pods
// masquerade as on a real node — with the example pods of `npm start`. First the inspection
// commands (`cilia bpf ct|nat|ipcache|endpoint|prog list`, `bpf policy get`, `map list`,
// `metrics list`) after real traffic, then `cilia cleanup`: refused while the agent serves its socket and without a terminal to ask, then with --force it
// leaves no netns, veth, tc program, pin or state file, says what it removed, finds nothing the
// second time, and a new agent with an empty state directory starts on the same names.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BpfMap, listPrograms } from '@cilia/bpf';
import type { Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, deletePodNetns, REPO, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../support/agent.js';
import { ciliaRuns } from '../support/cli.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-clean-${RUN}`;
const OUTSIDE_NS = `cilia-e2e-out-${RUN}`;
const K8S_NS = `clean${RUN}`;
const CLI = join(REPO, 'apps/cli/bin/cilia.js');
const STATS = '/proc/sys/kernel/bpf_stats_enabled';

const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
/** Runs `cilia ARGS` on the node (its network namespace, the machine's bpffs and /run/netns). */
const cilia = (...args: string[]) => {
  const r = sh('nsenter', [`--net=/run/netns/${NODE_NS}`, process.execPath, CLI, ...args]);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const podNetns = () => readdirSync('/run/netns').filter((n) => n.startsWith(`cilia_${K8S_NS}_`)).sort();
const nodeLinks = () => sh('ip', ['-n', NODE_NS, '-o', 'link', 'show']).stdout;
const tcFilters = (direction: string) => sh('ip', ['netns', 'exec', NODE_NS, 'tc', 'filter', 'show', 'dev', 'eth0', direction]).stdout.trim();

describe('cilia on a node with the example pods: inspection, then cleanup', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-cleanup-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const stateDir = join(dir, 'state');
  const bpfRoot = testPinRoot(dir);
  const cleanupArgs = ['--socket', socket, '--state-dir', stateDir, '--bpf-root', bpfRoot];
  const configFile = join(dir, 'agent.yaml');
  let agent: NetnsProcess | undefined;
  let endpoints: Endpoint[] = [];
  const statsBefore = readFileSync(STATS, 'utf8');

  async function startAgent(): Promise<Endpoint[]> {
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    await waitHealthy(socket, agent);
    // The example pods' endpoints, once both are ready (called from beforeAll: no expect.poll there).
    for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const list = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body;
      if (list.filter((e) => e.state === 'ready').length === 2) return list;
      if (Date.now() > deadline) throw new Error(`the example pods are not ready: ${JSON.stringify(list)}`);
    }
  }
  async function stopAgent(): Promise<void> {
    agent?.child.kill('SIGTERM');
    expect(await agent?.done).toBe(0);
  }

  beforeAll(async () => {
    expect(sh('ip', ['netns', 'add', NODE_NS]).status).toBe(0);
    expect(sh('ip', ['netns', 'add', OUTSIDE_NS]).status).toBe(0);
    for (const args of [['link', 'set', 'lo', 'up'], ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUTSIDE_NS], ['addr', 'add', '192.168.77.1/24', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['route', 'add', 'default', 'via', '192.168.77.254', 'dev', 'eth0']]) {
      expect(sh('ip', ['-n', NODE_NS, ...args]).status, args.join(' ')).toBe(0);
    }
    for (const args of [['addr', 'add', '192.168.77.254/24', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up']]) expect(sh('ip', ['-n', OUTSIDE_NS, ...args]).status).toBe(0);
    // The example manifests of `npm start`, in a namespace of this run.
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    for (const file of readdirSync(join(REPO, 'examples/standalone/manifests'))) {
      writeFileSync(join(manifests, file), readFileSync(join(REPO, 'examples/standalone/manifests', file), 'utf8').replaceAll('shop', K8S_NS));
    }
    writeFileSync(configFile, stringify({ extends: 'standalone', agent: { apiSocket: socket, stateDir, bpfRoot, metricsAddress: '', nodeName: `clean-${RUN}` }, manifests: { directory: manifests } }));
    endpoints = await startAgent();
  }, 60_000);

  it('shows the maps, programs and metrics after real traffic', async () => {
    const [frontend, backend] = ['frontend', 'backend'].map((n) => endpoints.find((e) => e.name === n)!);
    writeFileSync(STATS, '1');
    // Pod to pod (conntrack), and pod to outside the node (masqueraded: conntrack and NAT).
    for (const [from, to] of [[frontend!, backend!.ipv4!], [backend!, '192.168.77.254']] as const) {
      const ping = sh('ip', ['netns', 'exec', from.netns.replace('/run/netns/', ''), 'ping', '-c', '1', '-W', '2', to]);
      expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    }
    const s = ['--socket', socket];
    const runs = [['bpf', 'ct', 'list', '-o', 'json'], ['bpf', 'nat', 'list', '-o', 'json'], ['bpf', 'ipcache', 'list', '-o', 'json'], ['bpf', 'endpoint', 'list', '-o', 'json'], ['bpf', 'prog', 'list', '-o', 'json'], ['bpf', 'policy', 'get', String(backend!.id), '-o', 'json'], ['map', 'list', '-o', 'json'], ['metrics', 'list', '-o', 'json'],
      ['bpf', 'ct', 'list'], ['bpf', 'nat', 'ls'], ['bpf', 'ipcache', 'list'], ['bpf', 'endpoint', 'list'], ['bpf', 'prog', 'list'], ['bpf', 'policy', 'get', String(backend!.id)], ['map', 'list'], ['metrics', 'list'], ['bpf', 'policy', 'get', 'x']];
    const results = await ciliaRuns(runs.map((r) => [...r, ...s]));
    for (const [i, r] of results.slice(0, -1).entries()) expect(r, runs[i]!.join(' ')).toMatchObject({ code: 0, stderr: '' });
    const [ct, nat, ipcache, bpfEndpoints, progs, policy, maps, metrics] = results.slice(0, 8).map((r) => JSON.parse(r.stdout));
    const [ctText, natText, ipcacheText, endpointText, progText, policyText, mapText, metricsText, badId] = results.slice(8);

    expect(ct).toContainEqual(expect.objectContaining({ protocol: 'ICMP', source: frontend!.ipv4, destination: backend!.ipv4, packetsOriginal: 1, packetsReply: 1 }));
    expect(ct).toContainEqual(expect.objectContaining({ protocol: 'ICMP', source: backend!.ipv4, destination: '192.168.77.254', packetsReply: 1 }));
    expect(ctText!.stdout).toMatch(new RegExp(`^ICMP\\s+${backend!.ipv4!.replace(/\./g, '\\.')}:\\d+\\s+192\\.168\\.77\\.254:\\d+\\s+established\\s`, 'm'));
    expect(nat).toContainEqual(expect.objectContaining({ direction: 'egress', protocol: 'ICMP', source: backend!.ipv4, destination: '192.168.77.254', translatedAddress: '192.168.77.1' }));
    expect(natText!.stdout).toMatch(/^egress\s+ICMP\s+\S+\s+192\.168\.77\.254:\d+\s+192\.168\.77\.1:\d+\s/m);
    expect(ipcache).toContainEqual({ prefix: `${backend!.ipv4}/32`, identity: backend!.identity, tunnelEndpoint: '0.0.0.0', flags: 0 });
    expect(ipcacheText!.stdout).toMatch(new RegExp(`^${backend!.ipv4!.replace(/\./g, '\\.')}/32\\s+${backend!.identity}\\s`, 'm'));
    expect(bpfEndpoints).toContainEqual(expect.objectContaining({ address: frontend!.ipv4, endpointId: frontend!.id, identity: frontend!.identity, mac: frontend!.mac, hostMac: frontend!.hostMac }));
    expect(endpointText!.stdout).toMatch(new RegExp(`^${frontend!.ipv4!.replace(/\./g, '\\.')}\\s+${frontend!.id}\\s+${frontend!.identity}\\s`, 'm'));
    // The pods' pings ran through from-container with the kernel counting.
    expect(progs.statsEnabled).toBe(true);
    const fromContainer = (progs.programs as { name: string; runCount: number; averageRunTimeNs: number }[]).find((p) => p.name === 'cil_from_contai');
    expect(fromContainer?.runCount).toBeGreaterThan(0);
    expect(fromContainer?.averageRunTimeNs).toBeGreaterThan(0);
    expect(progText!.stdout).toMatch(/^Run statistics: on/);
    expect(progText!.stdout).toMatch(/^\d+\s+cil_from_contai\s+sched_cls\s+[0-9a-f]{16}\s+[1-9]\d*\s+\d+ns$/m);
    expect(policy).toMatchObject({ enforcement: { ingress: 'allow-all', egress: 'allow-all' } });
    expect(policyText!.stdout).toMatch(/^Policy enforcement:\s+ingress allow-all, egress allow-all$/m);
    expect(badId).toMatchObject({ code: 2, stderr: 'cilia: endpoint: expected an endpoint id, got "x"\n' });
    // Map pressure: the conntrack map holds the two connections (and any others), of its capacity.
    const ctMap = (maps as { name: string; entries: number; maxEntries: number; pressure: number }[]).find((m) => m.name === 'cilia_ct')!;
    expect(ctMap.entries).toBe(ct.length);
    expect(ctMap.pressure).toBeCloseTo(ct.length / ctMap.maxEntries, 6);
    expect(mapText!.stdout).toMatch(new RegExp(`^cilia_ct\\s+lru_hash\\s+${ct.length}\\s+${ctMap.maxEntries}\\s+\\d+\\.\\d%$`, 'm'));
    expect(mapText!.stdout).toMatch(/^cilia_tc_slots\s+prog_array\s+<none>\s+\d+\s+<none>$/m);
    const pressure = (metrics as { name: string; samples: { labels: Record<string, string>; value: number }[] }[]).find((f) => f.name === 'cilia_bpf_map_pressure');
    expect(pressure?.samples).toContainEqual({ name: 'cilia_bpf_map_pressure', labels: { map_name: 'cilia_ct' }, value: expect.any(Number) });
    // Cilium's names with our prefix, read through the services.
    const value = (name: string, labels: Record<string, string> = {}) =>
      (metrics as { name: string; samples: { labels: Record<string, string>; value: number }[] }[]).find((f) => f.name === name)?.samples.find((x) => JSON.stringify(x.labels) === JSON.stringify(labels))?.value;
    expect(value('cilia_ip_addresses', { family: 'ipv4' })).toBe(2);
    expect(value('cilia_nodes_all_num')).toBe(1);
    expect(value('cilia_identity', { type: 'cluster' })).toBeGreaterThanOrEqual(2);
    expect(value('cilia_identity', { type: 'reserved' })).toBeGreaterThan(0);
    expect(value('cilia_policy_change_total', { outcome: 'success' })).toBe(0);
    expect(metricsText!.stdout).toMatch(/^cilia_bpf_map_pressure\s+map_name=cilia_endpoints\s+[\d.e-]+$/m);
  }, 60_000);

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    deletePodNetns(K8S_NS);
    sh('ip', ['netns', 'delete', NODE_NS]);
    sh('ip', ['netns', 'delete', OUTSIDE_NS]);
    writeFileSync(STATS, statsBefore);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('cleanup removes every netns, veth, program, pin and state file of the agent; a new agent starts on the same names', async () => {
    const netns = podNetns();
    expect(netns).toEqual([`cilia_${K8S_NS}_backend`, `cilia_${K8S_NS}_frontend`]);
    expect(nodeLinks()).toMatch(/lxc[0-9a-f]{12}/);
    expect(tcFilters('ingress')).toContain('cil_from_netdev');
    // The agent's programs: every program using its pinned slot table or endpoints map.
    const mapIds = ['cilia_tc_slots', 'cilia_endpoints'].map((name) => {
      const map = BpfMap.openPinned(join(bpfRoot, name));
      const id = map.id;
      map.close();
      return id;
    });
    const programs = listPrograms().filter((p) => p.mapIds.some((id) => mapIds.includes(id)));
    expect(programs.map((p) => p.name)).toEqual(expect.arrayContaining(['cil_from_contai', 'cil_to_containe', 'cil_from_netdev', 'cil_to_netdev', 'cil_policy']));

    const refused = cilia('cleanup', ...cleanupArgs);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`cilia: an agent is serving ${socket}; stop it first, or pass --force\n`);

    await stopAgent();
    // Endpoints outlive the agent: all of it is still there.
    expect(podNetns()).toEqual(netns);
    const unasked = cilia('cleanup', ...cleanupArgs);
    expect(unasked.code).toBe(1);
    expect(unasked.stderr).toMatch(/^cilia: cleanup asks before it removes anything, and stdin is not a terminal: pass --force/);
    const dry = cilia('cleanup', '--dry-run', '-o', 'json', ...cleanupArgs);
    expect(dry.code).toBe(0);
    expect(podNetns()).toEqual(netns);

    const cleaned = cilia('cleanup', '--force', ...cleanupArgs);
    expect(cleaned.stderr).toBe('');
    expect(cleaned.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({ removed: expect.any(Array), failed: [] });
    const removed = (JSON.parse(dry.stdout) as { removed: { kind: string; name: string }[] }).removed;
    for (const item of removed) expect(cleaned.stdout).toMatch(new RegExp(`^${item.kind}\\s+${item.name.replace(/[.]/g, '\\.')}\\s`, 'm'));
    expect(removed.filter((i) => i.kind === 'netns').map((i) => i.name).sort()).toEqual(netns);
    expect(removed.filter((i) => i.kind === 'link').map((i) => i.name).sort()).toEqual(endpoints.map((e) => e.hostInterface).sort());
    expect(removed.filter((i) => i.kind === 'tc-program').map((i) => i.name)).toEqual(['eth0', 'eth0']);

    // Listed again: nothing of it is left.
    expect(podNetns()).toEqual([]);
    expect(nodeLinks()).not.toMatch(/lxc/);
    expect(tcFilters('ingress')).toBe('');
    expect(tcFilters('egress')).toBe('');
    const loaded = new Set(listPrograms().map((p) => p.id));
    expect(programs.filter((p) => loaded.has(p.id))).toEqual([]);
    expect(existsSync(bpfRoot)).toBe(false);
    expect(existsSync(stateDir) ? readdirSync(stateDir) : []).toEqual([]);

    const again = cilia('cleanup', '--force', ...cleanupArgs);
    expect([again.code, again.stdout, again.stderr]).toEqual([0, 'Nothing to remove.\n', '']);

    // A new agent, empty state directory, same names: it starts cleanly and makes the pods again.
    const second = await startAgent();
    expect(second.map((e) => e.hostInterface).sort()).toEqual(endpoints.map((e) => e.hostInterface).sort());
    expect(podNetns()).toEqual(netns);
  }, 120_000);
});
